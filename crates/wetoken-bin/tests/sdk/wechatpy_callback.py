"""An existing wechatpy callback handler behind wetoken's `wechat` webhooks.

    python wechatpy_callback.py TOKEN ENCODING_AES_KEY APPID QUERY < BODY

Verifies and decrypts the re-posted callback exactly as a wechatpy handler
does, and prints the decrypted message.
"""
import sys
import urllib.parse

from wechatpy.crypto import WeChatCrypto

token, aes_key, appid, query = sys.argv[1:5]
q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
body = sys.stdin.buffer.read().decode("utf-8")
crypto = WeChatCrypto(token, aes_key, appid)
print(crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"]))
