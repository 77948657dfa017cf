"""wechatpy on both sides of a reply webhook.

    python wechatpy_reply.py serve
        A plaintext-mode wechatpy handler as wetoken's `wechat_plain` reply
        webhook: prints its port, reads its Token (the webhook's secret)
        from stdin, then answers every text message with
        create_reply("wechatpy: <content>") and anything else with success.

    python wechatpy_reply.py open TOKEN AES_KEY APPID < ANSWER
        WeChat's side: opens the encrypted passive reply wetoken gave
        (XML envelope) with wechatpy's WeChatCrypto, checks its signature,
        and prints the reply's type and content as JSON.
"""
import http.server
import json
import sys
import urllib.parse

import xmltodict
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

TOKEN = None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
        try:
            check_signature(TOKEN, q["signature"], q["timestamp"], q["nonce"])
        except (InvalidSignatureException, KeyError):
            self.send_response(403)
            self.end_headers()
            return
        msg = parse_message(body)
        if msg.type == "text":
            out = create_reply("wechatpy: " + msg.content, msg).render()
        else:
            out = "success"
        data = out.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve():
    global TOKEN
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    TOKEN = sys.stdin.readline().strip()
    server.serve_forever()


def open_reply(token, aes_key, appid):
    answer = sys.stdin.buffer.read().decode("utf-8")
    envelope = xmltodict.parse(answer)["xml"]
    crypto = WeChatCrypto(token, aes_key, appid)
    plain = crypto.decrypt_message(answer, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
    reply = xmltodict.parse(plain)["xml"]
    print(json.dumps({"type": reply["MsgType"], "content": reply.get("Content"), "to": reply["ToUserName"]}, ensure_ascii=False))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        open_reply(*sys.argv[2:5])
