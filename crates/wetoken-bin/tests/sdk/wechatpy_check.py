"""wechatpy (PyPI, 2.x) used against wetoken by changing its base URL.

    python wechatpy_check.py BASE_URL APPID SECRET CORPID CORPSECRET

Prints what the SDK obtained as JSON; the Rust test compares it with what
wetoken serves. wechatpy builds most URLs from API_BASE_URL but hard-codes the
token URL, so the token fetch is pointed at the base URL too (docs/MIGRATING.md).
"""
import json
import sys

from wechatpy import WeChatClient
from wechatpy.work import WeChatClient as WeComClient

base, appid, secret, corpid, corpsecret = sys.argv[1:6]


class MpClient(WeChatClient):
    API_BASE_URL = base + "/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


class WorkClient(WeComClient):
    API_BASE_URL = base + "/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
        )


mp = MpClient(appid, secret)
work = WorkClient(corpid, corpsecret)
print(json.dumps({
    "mp_token": mp.access_token,
    "mp_ticket": mp.jsapi.get_jsapi_ticket(),
    # An ordinary API call, through wetoken's proxy to WeChat.
    "wechat_ips": mp.misc.get_wechat_ips(),
    "work_token": work.access_token,
    "work_ticket": work.jsapi.get_jsapi_ticket(),
    "work_agent_ticket": work.jsapi.get_agent_ticket()["ticket"],
}))
