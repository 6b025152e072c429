"""Protocol Buffers with the system protoc (no proto rules to download)."""

def cc_proto(name, srcs, deps = [], visibility = None):
    """C++ library for .proto files under proto/, compiled by Debian's protoc.

    Generated headers are included as "cairn/v1/foo.pb.h".
    """
    hdrs = [s.replace(".proto", ".pb.h") for s in srcs]
    ccs = [s.replace(".proto", ".pb.cc") for s in srcs]
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_srcs" for d in deps],
        outs = hdrs + ccs,
        cmd = "protoc --proto_path=proto --cpp_out=$(GENDIR)/proto {files}".format(
            files = " ".join(["$(location %s)" % s for s in srcs]),
        ),
    )
    native.filegroup(
        name = name + "_srcs",
        srcs = srcs + [d + "_srcs" for d in deps],
    )
    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        includes = ["."],
        deps = deps + ["@system//:protobuf"],
        visibility = visibility,
    )
