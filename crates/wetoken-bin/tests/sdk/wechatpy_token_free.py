"""wechatpy (PyPI, 2.x) making token-free calls through wetoken (SPEC §6).

    python wechatpy_token_free.py BASE_URL APPID KEY MEDIA_BYTES

The client never holds a token: its API base URL is wetoken's
/proxy/mp/{appid}/cgi-bin/, its token source gives none (requests leaves a
parameter whose value is None out of the URL), and every request carries the
wetoken key. Prints what WeChat answered, as JSON, for the Rust test.
"""
import io
import json
import sys

from wechatpy import WeChatClient

base, appid, key, media_bytes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


class TokenFreeClient(WeChatClient):
    """A WeChatClient whose calls go through wetoken, which adds the token."""

    API_BASE_URL = f"{base}/proxy/mp/{appid}/cgi-bin/"

    def __init__(self, appid, key):
        super().__init__(appid, "unused: wetoken holds the secret")
        self._http.headers["Authorization"] = f"Bearer {key}"

    @property
    def access_token(self):
        return None

    def fetch_access_token(self):
        raise RuntimeError("a token-free client never fetches a token")


client = TokenFreeClient(appid, key)
menu = client.menu.create({"button": [{"type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC"}]})
message = client.message.send_text("oUser0001", "你好，token-free")
media = client.media.upload("video", ("clip.mp4", io.BytesIO(bytes(i % 251 for i in range(media_bytes)))))
print(json.dumps({"menu": menu, "message": message, "media": media}, ensure_ascii=False))
