-- wetoken schema, version 6: custody (SPEC §2 "verified" refresh).
-- verified_at / verdict: WeChat's last verdict on the current value of a
-- credential (1 still accepted, 0 rejected) and when it was given, cleared
-- whenever the value changes, so every instance asks WeChat at most once per
-- WETOKEN_VERIFY_TTL_SECS. forced_day / forced_count: forced stable-token
-- calls in the current WeChat day (00:00 +08:00 on the database's clock),
-- capped by WETOKEN_MAX_FORCED_PER_DAY; the count past the cap marks that the
-- day's wetoken.credential.force_budget_spent was raised.

ALTER TABLE wt_credentials ADD COLUMN IF NOT EXISTS verified_at BIGINT,
    ADD COLUMN IF NOT EXISTS verdict BIGINT,
    ADD COLUMN IF NOT EXISTS forced_day BIGINT,
    ADD COLUMN IF NOT EXISTS forced_count BIGINT;
