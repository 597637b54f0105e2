-- Sign-in throttle counters shared by every dashboard process (issue 14): the `limits` moving
-- windows of dashboards/throttle.py, one row per counted hit (dashboards/throttle_store.py).
-- `at` is seconds since the epoch, the clock the library computes its resets with.
CREATE TABLE throttle_hits (
    key text NOT NULL,
    at double precision NOT NULL
);
CREATE INDEX throttle_hits_key_at ON throttle_hits (key, at);
