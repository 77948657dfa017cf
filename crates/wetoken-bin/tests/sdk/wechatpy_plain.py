"""A wechatpy plaintext-mode handler behind wetoken's `wechat_plain` webhook.

    python wechatpy_plain.py TOKEN QUERY < BODY

The webhook's secret is the handler's Token: it checks the signature and
parses the message exactly as a plaintext-mode handler facing WeChat does,
and prints what it parsed, as JSON.
"""
import json
import sys
import urllib.parse

from wechatpy import parse_message
from wechatpy.utils import check_signature

token, query = sys.argv[1:3]
q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
check_signature(token, q["signature"], q["timestamp"], q["nonce"])
msg = parse_message(sys.stdin.buffer.read().decode("utf-8"))
print(json.dumps({"type": msg.type, "content": getattr(msg, "content", None), "source": msg.source, "id": msg.id}, ensure_ascii=False))
