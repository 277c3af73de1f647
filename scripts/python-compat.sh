#!/usr/bin/env bash
# kvgit for Python (crates/python): builds the kvgit_rs wheel with maturin,
# installs it in a venv, runs the package's own pytest suite, then runs the
# Python kvgit 0.1.3's own tests, unmodified, against it (the alias package
# crates/python/compat/kvgit makes `import kvgit` resolve to kvgit_rs).
#
# Fails if the own suite fails, if fewer than 95% of 0.1.3's tests pass, or
# if the tests that fail are not exactly those listed, with their reason,
# in crates/python/KNOWN_DIFFERENCES.md.
#
# Work files go to target/python-compat (KVGIT_PY_WORK overrides); the
# wheel is built in the workspace's target dir (CARGO_TARGET_DIR).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${KVGIT_PY_WORK:-$root/target/python-compat}"
python="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"

if [ ! -x "$work/venv/bin/python" ]; then
    "$python" -m venv "$work/venv"
fi
py="$work/venv/bin/python"
"$py" -m pip install -q --disable-pip-version-check maturin pytest

echo "== building the wheel (maturin, release)"
rm -rf "$work/wheels"
(cd "$root/crates/python" && "$work/venv/bin/maturin" build --release -o "$work/wheels")
"$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$work"/wheels/kvgit_rs-*.whl

# The remote tests serve file:// stores with the kvgit command line: the
# one `cargo test` built, else a build of it.
if [ -z "${KVGIT_BIN:-}" ]; then
    KVGIT_BIN="$CARGO_TARGET_DIR/debug/kvgit"
    if [ ! -x "$KVGIT_BIN" ]; then
        echo "== building the kvgit command line for the remote tests"
        cargo build -q -p kvgit-cli --manifest-path "$root/Cargo.toml"
    fi
fi
export KVGIT_BIN

echo "== the package's own tests (crates/python/tests)"
(cd "$work" && "$py" -m pytest -q -p no:cacheprovider "$root/crates/python/tests")
echo "== mypy over the installed package (its .pyi stub and py.typed included)"
"$py" -m pip install -q --disable-pip-version-check "mypy==1.13.0"
(cd "$work" && "$py" -m mypy --no-incremental -p kvgit_rs)

echo "== kvgit 0.1.3's own tests against kvgit_rs"
if [ ! -d "$work/kvgit-0.1.3" ]; then
    "$py" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
        kvgit==0.1.3 -d "$work/sdist"
    tar -xzf "$work/sdist/kvgit-0.1.3.tar.gz" -C "$work"
fi
# Only the tests: the sdist's own kvgit/ package must not be importable.
rm -rf "$work/run" && mkdir -p "$work/run"
cp -r "$work/kvgit-0.1.3/tests" "$work/run/tests"
set +e
(cd "$work/run" && PYTHONPATH="$root/crates/python/compat" "$work/venv/bin/pytest" \
    -q -p no:cacheprovider --junitxml="$work/compat.xml" tests)
set -e

"$py" - "$work/compat.xml" "$root/crates/python/KNOWN_DIFFERENCES.md" <<'PY'
import re
import sys
import xml.etree.ElementTree as ET

report, known_file = sys.argv[1], sys.argv[2]
failed, total = set(), 0
for case in ET.parse(report).iter("testcase"):
    total += 1
    module, _, cls = case.get("classname").rpartition(".")
    test_id = f"{module.replace('.', '/')}.py::{cls}::{case.get('name')}"
    if case.find("failure") is not None or case.find("error") is not None:
        failed.add(test_id)
known = set(re.findall(r"^- `([^`]+)`", open(known_file).read(), re.M))
passed = total - len(failed)
rate = 100.0 * passed / total if total else 0.0
print(f"kvgit 0.1.3 tests against kvgit_rs: {passed} of {total} pass ({rate:.1f}%)")
ok = True
for t in sorted(failed - known):
    print(f"  FAILS, not in KNOWN_DIFFERENCES.md: {t}")
    ok = False
for t in sorted(known - failed):
    print(f"  PASSES, but listed in KNOWN_DIFFERENCES.md: {t}")
    ok = False
if rate < 95.0:
    print("  below the 95% required")
    ok = False
sys.exit(0 if ok else 1)
PY
