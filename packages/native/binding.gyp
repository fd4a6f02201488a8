{
  "targets": [
    {
      "target_name": "iocp",
      "sources": [
        "src/port/park.cpp",
        "src/port/payload_table.cpp",
        "src/port/port.cpp",
        "src/port/spin_policy.cpp",
        "src/binding/addon.cpp",
        "src/binding/code_cache.cpp",
        "src/binding/debug_hooks.cpp",
        "src/binding/handle_table.cpp",
        "src/binding/native_port.cpp",
        "src/binding/thread_state.cpp",
        "src/binding/io_binding.cpp",
        "src/io/op_pool.cpp",
        "src/io/file_slots.cpp",
        "src/io/tracked.cpp",
        "src/io/thread_pool_backend.cpp",
        "src/io/io_uring_backend.cpp",
        "src/io/service.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-O3", "-std=gnu++14", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O2", "-fvisibility=hidden", "-pthread"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["OS==\"win\"", {
          "libraries": ["-lsynchronization"]
        }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "GCC_OPTIMIZATION_LEVEL": "2",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "CLANG_CXX_LIBRARY": "libc++",
        "MACOSX_DEPLOYMENT_TARGET": "10.15"
      },
      "msvs_settings": {
        "VCCLCompilerTool": {
          "ExceptionHandling": 1,
          "AdditionalOptions": ["/std:c++17"]
        }
      },
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags_cc!": ["-O3"],
          "cflags": ["-O2"],
          "xcode_settings": { "GCC_OPTIMIZATION_LEVEL": "2" }
        }
      }
    }
  ]
}
