import Crypto
import Foundation
import JWTKit
@testable import Tenancy

/// Keys for tests. RSA key generation is not public in swift-crypto without _CryptoExtras, so
/// the RSA keys are fixed (generated once with `openssl genpkey`, used nowhere else).
enum TestKeys {
    static let rsaPrivateKeyPEM = """
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDVc8xgDBn8TxWf
c967ooAdyVzE72Otkhyny/KXgrLsyV4fetffVM48Y+ytHLodPcQ3W7598kvdbIR7
JG4PMPMc7e9RD8dvY78bs9bTSwtnGhQGxmdU9SJWP2D5Ecpy8inGiM9TxpVGv661
0c8UTwGPxC6Obo7DTguAvMEgP7/FqWmw6xySW463h6/qm7cgneYjG1z4QLnlOtyD
+1FwBiENucam1c5E1V36MVC5G7cM6x/fwYkO349SRMZNQTE24SmKdjh2bLB81UtV
mJjVZZBqPhbyjwg5jiiL45ngFY68bjfa0TIMSM+VxQiEWT5+sYv9RAWyXkLpD58Z
tIIjiiTFAgMBAAECggEAHj/9sgvs/9aWXiVd5rIKHY6MrOUvN2k6UeZjoCi34jpM
ckImx0H9w022/DaSwrOe8+h21+MHcN8g7FG2nkUF4y7uKEsH7MeSTSMAuiuLt2YY
+ffSq5Xc8qOjQtEMY5tho77+QOVnAOKH6EEOa5ahxkXbgjh1V4TfOPSnGwKl0yVj
kUjqXZk/wm08+v4Rn2fOOYoXMgl9o63xkmIEAUnhs1+SH7rnylbZoAq5VpHC11lP
/ufvAFj7ZltMytWpwRhTCbS0wO5Xoi6/V09ihNO8qducy5nN8Sg5/Hw+w7nOzYWb
vghdUnfWaZ99SJFQL/HM5ODA93nlPMEyfMfOa0bEgQKBgQD4hdKPxeWu6rpavO79
jVc+nrrth9Q/SziMNB16xnu/VY8TofAJJTaH8AOon3d8zCjqfxS3wqXkg51exU4V
wa1IGoMhkMjuw2GH4PuGNzZV/owoAghH3AbEFqMFruBFr6lVIpSIY0HuUPfQvpvv
JTEzbwZpHIBP3Q80/pOTs7QjRQKBgQDb39sSs0O4Ux4Ybf+6b/ZvXIL6stpQN+/a
bdNI8BBoc5pPQnkPa5Sqj9KXVy40Vm7OfDEk45+YkJqKxhXOjmn2eyBpTN/8xyI7
HpiuXWBaW166yoANaZOEKeNcNI4ZnIb/vWUtf+XwN0qegXg+TTOdTNmN/4cCXGmB
mOl7h9FTgQKBgENfzDir9tuXyROmWsgkVD2mvJh+lVzfYKIp0sAhJRU29cXlxfRE
wWbS+7rwGG2dz43bC9vRijXMNJKnvMaLLhX5Egm8fay1DTDQHoBBYZqomoiSHHqW
vMLWPDXjNevOdoKdEFV1Sz93deeCdTW9CHygIcXHM0XzcRb12T5WnoRdAoGAPvxz
r3m3DpiQ6IKqXWgxellQFC0kKRK9HR+VBTHwIVvseoQaVfaFkg69TylkTQ3tlC0z
jtO+JmBWRSbVnGRjqn4/HKsvBySsg68SIfER5xCBpJTZ9f2mipfNT96mTmPusFg7
IbufzR6pu5pvLbnD7W3UbL8kl+KNPtjlGcQgjQECgYEA9NaLJ+eW1zjGGvlmZ8yD
yV+U9A6G6TGg/W7ANtQPrbbPYxZ/wefVmMhfdvqwDmJ69M9IDYrb8uQW12plhsGu
9Eig+DbTdsri8q3Ujyb92MYRZdh6RUElA+p8gQShy1hmq65FGYqx5bVDlC8Rc0iN
l0hZykHHiHSbD1CR9G4sTI0=
-----END PRIVATE KEY-----
"""

    /// 1024 bits: below the 2048-bit minimum.
    static let smallRSAPublicKeyPEM = """
-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC90OO3r7WEbcbwRzaiLi5hwf6q
z9EOVGNAXnNIhR2V0f9Z313gq76OXxmukkHJGTgXF4oque1t7DZE+UkEvQbZKKs9
pwKb+3z1BIQ6qATZH8J11ASf5KIJAhAjKBs10LjlReShuaAxjoa0asHlJHnOPZq2
aAYsqguK++eXzX3EdwIDAQAB
-----END PUBLIC KEY-----
"""

    /// A P-384 key: not ES256.
    static let p384PublicKeyPEM = """
-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEXRhcyMaJ2JovXWTB/832a/2iQCdwkj3V
HWMM/VGpGivOWdKlFgTsgkpY4rcWNRDZZZ2N4bUmmjBtKolkFfM4K0nLbgZODx6I
C2HmYQhdH8+l/3FauDEbxCxBMgx6E6vs
-----END PUBLIC KEY-----
"""
}
