{
  "targets": [
    {
      "target_name": "aesgcm",
      "sources": ["native/aesgcm.cc"],
      "cflags_cc": ["-O2"]
    }
  ]
}
