"""Repository rule exposing Debian's system libraries as cc_library targets.

Headers live in /usr/include (already on the compiler's search path), so each
target carries only link options. Abseil's many archives are listed by asking
pkg-config, so the list follows whatever Debian's libabsl-dev ships.
"""

_ABSL_MODULES = [
    "absl_base",
    "absl_flags",
    "absl_flags_parse",
    "absl_flags_usage",
    "absl_hash",
    "absl_random_random",
    "absl_raw_hash_set",
    "absl_status",
    "absl_statusor",
    "absl_str_format",
    "absl_strings",
    "absl_synchronization",
    "absl_time",
    "absl_crc32c",
]

def _pkg_config_libs(ctx, modules):
    available = []
    for m in modules:
        r = ctx.execute(["pkg-config", "--exists", m])
        if r.return_code == 0:
            available.append(m)
    r = ctx.execute(["pkg-config", "--libs"] + available)
    if r.return_code != 0:
        fail("pkg-config failed for %s: %s" % (available, r.stderr))
    return r.stdout.strip().split(" ")

def _quote_list(items):
    return "[" + ", ".join(['"%s"' % i for i in items if i]) + "]"

def _system_libs_impl(ctx):
    absl = _pkg_config_libs(ctx, _ABSL_MODULES)
    ctx.file("WORKSPACE", "")
    ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

cc_library(name = "absl", linkopts = {absl})
cc_library(name = "leveldb", linkopts = ["-lleveldb"])
cc_library(name = "protobuf", linkopts = ["-lprotobuf", "-lpthread"])
cc_library(name = "curl", linkopts = ["-lcurl"])
cc_library(name = "boost", linkopts = ["-lpthread"])
cc_library(name = "gtest", linkopts = ["-lgtest", "-lgmock", "-lpthread"])
cc_library(name = "gtest_main", linkopts = ["-lgtest_main"], deps = [":gtest"])
cc_library(name = "benchmark", linkopts = ["-lbenchmark", "-lpthread"])
""".format(absl = _quote_list(absl)))

system_libs = repository_rule(
    implementation = _system_libs_impl,
    local = True,
)
