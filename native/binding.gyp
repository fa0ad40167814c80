{
  "targets": [
    {
      "target_name": "sockspike",
      "sources": ["sockspike.c", "capture.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_c": ["-std=gnu11"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["sockspike.c", "capture.c"] }]
      ]
    }
  ]
}
