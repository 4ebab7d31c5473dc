# The pinned upstream llama.cpp. node-llama-cpp ships a git bundle of the exact llama.cpp tree it
# was built against; we take it from the npm registry so no GitHub access is needed at build time.
set(LLAMA_NPM_PACKAGE        "node-llama-cpp@3.22.1")
set(LLAMA_NPM_TARBALL        "node-llama-cpp-3.22.1.tgz")
set(LLAMA_NPM_TARBALL_SHA256 "a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f")
set(LLAMA_BUNDLE_PATH        "package/llama/gitRelease.bundle")
set(LLAMA_BUNDLE_SHA256      "5f5d1105d5df040738d87b8290e5d17e7362131cdcfdb0831618e0ea528b4a51")
set(LLAMA_COMMIT             "de3ff815ea7d559ee917f063901b8986f038abc6")
