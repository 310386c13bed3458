{
  "targets": [
    {
      "target_name": "aegisfs",
      "sources": ["native/aegisfs.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
