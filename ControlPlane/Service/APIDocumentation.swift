import Foundation
import Yams

/// The contract as served: `GET /openapi.yaml` byte for byte, and `GET /docs` rendered
/// once at start-up into a self-contained HTML page (inline style, no script, nothing loaded
/// from elsewhere).
public struct APIDocumentation: Sendable {
    public let yaml: [UInt8]
    public let html: [UInt8]

    public init() throws {
        let yaml = PackageResources.openapi_yaml
        self.yaml = yaml
        self.html = Array(try DocsRenderer.render(yamlText: String(decoding: yaml, as: UTF8.self)).utf8)
    }
}

extension APIDocumentation {
    /// `(method, path, operationId)` of every operation the contract defines, read from the
    /// embedded document (tests compare it with the routes the server registers).
    public static func contractOperations() throws -> [(method: String, path: String, operationID: String)] {
        let text = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
        guard let document = try Yams.load(yaml: text) as? [String: Any], let paths = document["paths"] as? [String: Any] else { return [] }
        var operations: [(method: String, path: String, operationID: String)] = []
        for (path, item) in paths {
            guard let item = item as? [String: Any] else { continue }
            for method in ["get", "post", "put", "patch", "delete"] {
                guard let operation = item[method] as? [String: Any] else { continue }
                operations.append((method.uppercased(), path, operation["operationId"] as? String ?? ""))
            }
        }
        return operations
    }
}

/// Renders the OpenAPI document into HTML. Handles the markdown the document uses:
/// headings, tables, lists, paragraphs, `code` and **bold**.
enum DocsRenderer {
    static func render(yamlText: String) throws -> String {
        guard let document = try Yams.load(yaml: yamlText) as? [String: Any] else { return "<p>empty document</p>" }
        let info = document["info"] as? [String: Any] ?? [:]
        let title = info["title"] as? String ?? "API"
        let version = info["version"] as? String ?? ""
        let paths = document["paths"] as? [String: Any] ?? [:]
        let tags = (document["tags"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        let schemas = ((document["components"] as? [String: Any])?["schemas"] as? [String: Any]) ?? [:]

        var operationsByTag: [String: [(path: String, method: String, operation: [String: Any])]] = [:]
        let methods = ["get", "post", "put", "patch", "delete"]
        for path in paths.keys.sorted() {
            guard let item = paths[path] as? [String: Any] else { continue }
            for method in methods {
                guard let operation = item[method] as? [String: Any] else { continue }
                let tag = (operation["tags"] as? [String])?.first ?? "other"
                operationsByTag[tag, default: []].append((path, method, operation))
            }
        }

        var html = """
        <!doctype html><html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title)) \(escape(version))</title><style>\(style)</style></head><body>
        <nav><h2>\(escape(title))</h2><p class="version">\(escape(version)) · <a href="/openapi.yaml">openapi.yaml</a></p><ul>
        """
        for tag in tags where operationsByTag[tag] != nil {
            html += "<li><a href=\"#tag-\(escape(tag))\">\(escape(tag))</a><ul>"
            for entry in operationsByTag[tag] ?? [] {
                let id = entry.operation["operationId"] as? String ?? ""
                html += "<li><a href=\"#\(escape(id))\"><span class=\"m \(entry.method)\">\(entry.method.uppercased())</span> \(escape(entry.path))</a></li>"
            }
            html += "</ul></li>"
        }
        html += "<li><a href=\"#schemas\">schemas</a></li></ul></nav><main>"
        html += "<h1>\(escape(title))</h1>"
        html += markdown(info["description"] as? String ?? "")
        for tag in tags {
            guard let entries = operationsByTag[tag] else { continue }
            html += "<h2 id=\"tag-\(escape(tag))\">\(escape(tag))</h2>"
            for entry in entries { html += renderOperation(entry.path, entry.method, entry.operation) }
        }
        html += "<h2 id=\"schemas\">Schemas</h2>"
        for name in schemas.keys.sorted() {
            html += "<details id=\"schema-\(escape(name))\"><summary>\(escape(name))</summary><pre>\(escape(json(schemas[name])))</pre></details>"
        }
        html += "</main></body></html>"
        return html
    }

    private static func renderOperation(_ path: String, _ method: String, _ operation: [String: Any]) -> String {
        let id = operation["operationId"] as? String ?? ""
        var html = "<section class=\"op\" id=\"\(escape(id))\"><h3><span class=\"m \(method)\">\(method.uppercased())</span> <code>\(escape(path))</code></h3>"
        if let summary = operation["summary"] as? String { html += "<p class=\"summary\">\(escape(summary))</p>" }
        if let security = operation["security"] as? [[String: Any]], let scopes = security.first?.values.first as? [String], !scopes.isEmpty {
            html += "<p>Scope: <code>\(scopes.map(escape).joined(separator: "</code>, <code>"))</code></p>"
        }
        html += markdown(operation["description"] as? String ?? "")
        let parameters = (operation["parameters"] as? [[String: Any]] ?? []).compactMap { parameter -> String? in
            if let reference = parameter["$ref"] as? String { return "<tr><td colspan=\"3\"><code>\(escape(reference.components(separatedBy: "/").last ?? reference))</code> (shared parameter)</td></tr>" }
            guard let name = parameter["name"] as? String else { return nil }
            return "<tr><td><code>\(escape(name))</code></td><td>\(escape(parameter["in"] as? String ?? ""))\((parameter["required"] as? Bool) == true ? ", required" : "")</td><td>\(inline(parameter["description"] as? String ?? ""))</td></tr>"
        }
        if !parameters.isEmpty { html += "<h4>Parameters</h4><table>\(parameters.joined())</table>" }
        if let body = operation["requestBody"] as? [String: Any], let content = body["content"] as? [String: Any] {
            for (type, value) in content {
                let schema = ((value as? [String: Any])?["schema"] as? [String: Any])?["$ref"] as? String
                let name = schema?.components(separatedBy: "/").last ?? "inline schema"
                html += "<h4>Request body</h4><p><code>\(escape(type))</code>: <a href=\"#schema-\(escape(name))\">\(escape(name))</a></p>"
            }
        }
        if let responses = operation["responses"] as? [String: Any] {
            html += "<h4>Responses</h4><table>"
            for code in responses.keys.sorted() {
                let response = responses[code] as? [String: Any] ?? [:]
                let text = (response["$ref"] as? String)?.components(separatedBy: "/").last ?? (response["description"] as? String ?? "")
                html += "<tr><td><code>\(escape(code))</code></td><td>\(inline(text))</td></tr>"
            }
            html += "</table>"
        }
        return html + "</section>"
    }

    /// Block-level markdown: `#` headings, `|` tables, `-` lists, paragraphs.
    static func markdown(_ text: String) -> String {
        var html = ""
        var paragraph: [String] = []
        var table: [String] = []
        var list: [String] = []
        func flush() {
            if !paragraph.isEmpty { html += "<p>\(inline(paragraph.joined(separator: " ")))</p>"; paragraph = [] }
            if !list.isEmpty { html += "<ul>" + list.map { "<li>\(inline($0))</li>" }.joined() + "</ul>"; list = [] }
            if !table.isEmpty {
                let rows = table.filter { !$0.replacingOccurrences(of: "|", with: "").allSatisfy { $0 == "-" || $0 == " " || $0 == ":" } }
                html += "<table>"
                for (index, row) in rows.enumerated() {
                    let cells = row.trimmingCharacters(in: .whitespaces).dropFirst().dropLast().components(separatedBy: "|")
                    let tag = index == 0 ? "th" : "td"
                    html += "<tr>" + cells.map { "<\(tag)>\(inline($0.trimmingCharacters(in: .whitespaces)))</\(tag)>" }.joined() + "</tr>"
                }
                html += "</table>"
                table = []
            }
        }
        for raw in text.components(separatedBy: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty {
                flush()
            } else if line.hasPrefix("#") {
                flush()
                let level = min(6, line.prefix(while: { $0 == "#" }).count + 1)
                html += "<h\(level)>\(inline(line.drop(while: { $0 == "#" }).trimmingCharacters(in: .whitespaces)))</h\(level)>"
            } else if line.hasPrefix("|") {
                if !paragraph.isEmpty || !list.isEmpty { flush() }
                table.append(line)
            } else if line.hasPrefix("- ") {
                if !paragraph.isEmpty || !table.isEmpty { flush() }
                list.append(String(line.dropFirst(2)))
            } else if !list.isEmpty, raw.hasPrefix("  ") {
                list[list.count - 1] += " " + line
            } else {
                if !table.isEmpty || !list.isEmpty { flush() }
                paragraph.append(line)
            }
        }
        flush()
        return html
    }

    /// Inline markdown: `code` and **bold**, everything else escaped.
    static func inline(_ text: String) -> String {
        var html = ""
        var inCode = false
        var inBold = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "`" {
                html += inCode ? "</code>" : "<code>"
                inCode.toggle()
            } else if !inCode, text[index...].hasPrefix("**") {
                html += inBold ? "</strong>" : "<strong>"
                inBold.toggle()
                index = text.index(after: index)
            } else {
                html += escape(String(character))
            }
            index = text.index(after: index)
        }
        if inCode { html += "</code>" }
        if inBold { html += "</strong>" }
        return html
    }

    static func escape(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&#39;"
            default: output.append(character)
            }
        }
        return output
    }

    private static func json(_ value: Any?) -> String {
        guard let value, JSONSerialization.isValidJSONObject(value),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return String(describing: value ?? "") }
        return String(decoding: data, as: UTF8.self)
    }

    private static let style = """
    body{margin:0;font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1b1f24;display:flex}
    nav{position:sticky;top:0;height:100vh;overflow:auto;width:300px;flex:none;background:#f5f6f8;border-right:1px solid #dde;padding:12px;box-sizing:border-box;font-size:13px}
    nav ul{list-style:none;padding-left:8px;margin:4px 0}nav a{color:#1b1f24;text-decoration:none}nav a:hover{text-decoration:underline}
    main{padding:24px 40px;max-width:1000px;overflow-wrap:anywhere}
    table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #dde;padding:4px 8px;vertical-align:top;text-align:left}
    code{background:#f0f1f4;padding:1px 4px;border-radius:3px;font-size:90%}pre{background:#f5f6f8;padding:8px;overflow:auto;font-size:12px}
    .op{border-top:1px solid #dde;margin-top:20px;padding-top:8px}.summary{font-weight:600}
    .m{display:inline-block;min-width:52px;text-align:center;border-radius:3px;color:#fff;font-size:11px;font-weight:700;padding:1px 4px}
    .get{background:#2f7d32}.post{background:#1f5fbf}.put{background:#a86400}.patch{background:#6b3fa0}.delete{background:#b3261e}
    .version{color:#667}
    """
}
