{
  "targets": [
    {
      "target_name": "canvos_native",
      "sources": ["src/canvos_native.cc"],
      "cflags_cc": ["-O2", "-std=c++17"],
      "libraries": ["-ldeflate", "-lzstd"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
