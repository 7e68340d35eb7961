{
  "targets": [
    {
      "target_name": "jitguard",
      "sources": [
        "csrc/addon.cc",
        "csrc/errors.cc",
        "csrc/netlink_socket.cc",
        "csrc/packet_socket.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-fvisibility=hidden", "-Wall", "-Wextra", "-Werror=return-type"],
      "cflags_cc": ["-fvisibility=hidden", "-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Werror=return-type"]
    }
  ]
}
