"""wechatpy (PyPI, 2.x) signing users in through wetoken (SPEC §13).

    python wechatpy_signin.py BASE_URL APPID KEY JS_CODE WEB_CODE

Both SDK objects are configured as a business system would be, with an
empty secret: their API base URL is wetoken's /proxy/mp/{appid}/ and every
request carries the wetoken key. Prints what each call returned, as JSON.
"""
import json
import sys

from wechatpy import WeChatClient
from wechatpy.oauth import WeChatOAuth

base, appid, key, js_code, web_code = sys.argv[1:6]
proxy = f"{base}/proxy/mp/{appid}/"


class TokenFreeClient(WeChatClient):
    """A WeChatClient with no secret and no token: wetoken adds what is needed."""

    def __init__(self):
        super().__init__(appid, "")
        self._http.headers["Authorization"] = f"Bearer {key}"

    @property
    def access_token(self):
        return None


client = TokenFreeClient()
client.wxa.API_BASE_URL = proxy
session = client.wxa.code_to_session(js_code)

oauth = WeChatOAuth(appid, "", "https://shop.example/cb")
oauth.API_BASE_URL = proxy
oauth._http.headers["Authorization"] = f"Bearer {key}"
token = oauth.fetch_access_token(web_code)
print(json.dumps({"session": session, "token": token}))
