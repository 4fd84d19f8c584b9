"""Peer test: privileges as VO clients see them (pyvo over requests).

Usage: check_access.py BASE_URL --token OWNER_TOKEN --eve-token EVE_TOKEN
                       --user USER --password PASSWORD --private ID
                       --ra RA --dec DEC

BASE_URL is a running wisecut server (job worker running) whose object ID
is private to USER (its creator, working in its project), who also has
OWNER_TOKEN; EVE_TOKEN belongs to a user of another project. (RA, DEC) is
the private frame's centre. Each client is pyvo with its own
requests.Session, as a script would authenticate:

1. sia    - SIA 2.0 at (RA, DEC): the private frame's DID is listed for the
            owner (Bearer token, and HTTP Basic with the password), never
            for anonymous or eve; the other records are the same for all.
2. tap    - TAP sync: COUNT(*) of ivoa.obscore is one or more higher for
            the owner; the private DID appears only for the owner.
3. async  - the owner's async TAP job (pyvo run_async) finds the private
            frame: the job ran with its owner's privileges; the job's URL
            answers 404 to anonymous and to eve.
4. denied - a wrong password and an unknown token answer 401 with a
            WWW-Authenticate challenge, never anonymous data.

Prints `access: <area> ok (...)` per area; exits 1 with `access: FAIL ...`.
"""

import argparse
import sys

import pyvo
import requests


class Fail(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Fail(message)


def session(token=None, basic=None):
    s = requests.Session()
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    if basic:
        s.auth = basic
    return s


def did_ids(table, column="obs_publisher_did"):
    return {int(str(d).rsplit("?", 1)[1]) for d in table[column]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("--token", required=True)
    ap.add_argument("--eve-token", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--private", type=int, required=True)
    ap.add_argument("--ra", type=float, required=True)
    ap.add_argument("--dec", type=float, required=True)
    a = ap.parse_args()
    base = a.base.rstrip("/")
    clients = {
        "anonymous": session(),
        "eve": session(token=a.eve_token),
        "owner-token": session(token=a.token),
        "owner-basic": session(basic=(a.user, a.password)),
    }
    sees = {"anonymous": False, "eve": False, "owner-token": True, "owner-basic": True}

    # 1. SIA 2.0
    found = {}
    for name, s in clients.items():
        sia = pyvo.dal.SIA2Service(f"{base}/vo/sia", session=s)
        res = sia.search(pos=(a.ra, a.dec, 0.001))
        found[name] = did_ids(res.to_table())
        check(
            (a.private in found[name]) == sees[name],
            f"sia: {name} {'does not see' if sees[name] else 'sees'} the private frame",
        )
    public = found["anonymous"]
    check(found["eve"] == public, "sia: eve's answer differs from anonymous's")
    check(
        found["owner-token"] - {a.private} >= public,
        "sia: the owner misses public records",
    )
    print(f"access: sia ok ({len(public)} public records, +1 for the owner)")

    # 2. TAP sync
    counts = {}
    for name, s in clients.items():
        tap = pyvo.dal.TAPService(f"{base}/vo/tap", session=s)
        counts[name] = int(tap.search("SELECT COUNT(*) AS n FROM ivoa.obscore")["n"][0])
        dids = did_ids(tap.search("SELECT obs_publisher_did FROM ivoa.obscore").to_table())
        check(
            (a.private in dids) == sees[name],
            f"tap: {name} {'does not see' if sees[name] else 'sees'} the private DID",
        )
        check(len(dids) == counts[name], f"tap: {name}: COUNT(*) and rows disagree")
    check(counts["anonymous"] == counts["eve"], "tap: eve counts differ from anonymous")
    check(
        counts["owner-token"] > counts["anonymous"],
        f"tap: owner count {counts['owner-token']} not above {counts['anonymous']}",
    )
    print(f"access: tap ok (anonymous {counts['anonymous']} rows, owner {counts['owner-token']})")

    # 3. async TAP with the owner's token: the runner uses the owner's view
    tap = pyvo.dal.TAPService(f"{base}/vo/tap", session=clients["owner-token"])
    job = tap.submit_job(
        f"SELECT obs_publisher_did FROM ivoa.obscore "
        f"WHERE obs_publisher_did LIKE '%?{a.private}'"
    )
    job.run()
    job.wait(timeout=60)
    check(job.phase == "COMPLETED", f"async: phase {job.phase}")
    rows = job.fetch_result().to_table()
    check(len(rows) == 1, f"async: the owner's job found {len(rows)} rows, not 1")
    for name in ("anonymous", "eve"):
        r = clients[name].get(job.url)
        check(r.status_code == 404, f"async: {name} got {r.status_code} for the owner's job")
    job.delete()
    print("access: async ok (the owner's job sees the private frame; others get 404)")

    # 4. bad credentials are refused, never served as anonymous
    for name, s in [
        ("wrong password", session(basic=(a.user, a.password + "x"))),
        ("unknown token", session(token="wct_not-a-token")),
    ]:
        r = s.get(f"{base}/vo/sia", params={"POS": f"CIRCLE {a.ra} {a.dec} 0.001"})
        check(r.status_code == 401, f"denied: {name} answered {r.status_code}")
        check("WWW-Authenticate" in r.headers, f"denied: {name} has no challenge")
    print("access: denied ok (401 with a challenge)")


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print(f"access: FAIL {e}")
        sys.exit(1)
