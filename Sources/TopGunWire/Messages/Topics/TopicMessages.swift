import TopGunCore

/// `TOPIC_SUB` (client → server): subscribes to a pub/sub topic.
public struct TopicSub: MessageBody {
    public static let type = "TOPIC_SUB"
    public static let envelope = MessageEnvelope.payload
    public var topic: String

    public init(topic: String) { self.topic = topic }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        topic = try f.required("topic")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("topic", topic)
        return f
    }
}

/// `TOPIC_UNSUB` (client → server): leaves a pub/sub topic.
public struct TopicUnsub: MessageBody {
    public static let type = "TOPIC_UNSUB"
    public static let envelope = MessageEnvelope.payload
    public var topic: String

    public init(topic: String) { self.topic = topic }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        topic = try f.required("topic")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("topic", topic)
        return f
    }
}

/// `TOPIC_PUB` (client → server): publishes `data` to a topic's other subscribers.
public struct TopicPub: MessageBody {
    public static let type = "TOPIC_PUB"
    public static let envelope = MessageEnvelope.payload
    public var topic: String
    public var data: DataValue

    public init(topic: String, data: DataValue) {
        self.topic = topic
        self.data = data
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        topic = try f.required("topic")
        data = f.anyValue("data")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("topic", topic)
        f.append("data", data)
        return f
    }
}

/// `TOPIC_MESSAGE` (server → client): a message published on a subscribed topic.
public struct TopicMessage: MessageBody {
    public static let type = "TOPIC_MESSAGE"
    public static let envelope = MessageEnvelope.payload
    public var topic: String
    public var data: DataValue
    public var publisherId: String?
    /// Server ms.
    public var timestamp: Int64

    public init(topic: String, data: DataValue, publisherId: String? = nil, timestamp: Int64) {
        self.topic = topic
        self.data = data
        self.publisherId = publisherId
        self.timestamp = timestamp
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        topic = try f.required("topic")
        data = f.anyValue("data")
        publisherId = try f.optional("publisherId")
        timestamp = try f.required("timestamp")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("topic", topic)
        f.append("data", data)
        f.append("publisherId", publisherId)
        f.append("timestamp", timestamp)
        return f
    }
}
