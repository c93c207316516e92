#!/usr/bin/python3
"""The C ABI of the datapath API client (gl_dpapi.h), from C, against a live gldp.

  test_c_abi   starts gldp with two net_null ports (no-rx=1, so the only traffic is
               what the test executes) and runs dpapi_c_test, a C11 program that
               exercises every function of the ABI; passes when it exits 0 and reports
               no failed check. gldp must still be alive afterwards.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gltest import Env, Failure, binary, check, main, run  # noqa: E402


def test_c_abi():
    with Env("c") as env:
        env.gldp(ports=[("n1", "net_null0,no-rx=1"), ("n2", "net_null1,no-rx=1")])
        r = run([binary("dpapi_c_test"), env.sock], check_rc=False, timeout=120)
        print(r.stdout, end="", flush=True)
        if r.stderr:
            print(r.stderr, end="", file=sys.stderr, flush=True)
        lines = r.stdout.strip().splitlines()
        if r.returncode != 0 or not lines or not lines[-1].endswith(" 0 failed"):
            raise Failure(f"dpapi_c_test exited {r.returncode}: "
                          f"{lines[-1] if lines else 'no output'}\n{env.log('gldp')}")
        failed = [ln for ln in lines if ln.startswith("FAIL")]
        check(not failed, f"failed checks: {failed}")
        check(env.gldp_proc.poll() is None, f"gldp died:\n{env.log('gldp')}")


if __name__ == "__main__":
    main([test_c_abi])
