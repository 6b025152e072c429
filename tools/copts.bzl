"""One source of compiler flags for Cairn's own code."""

CAIRN_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
]
