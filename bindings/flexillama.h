// The C API that the Java bindings cover: upstream llama.h plus the fork's own header.
#include "llama.h"
#include "llama-fork.h"
#include "llama-flexidepth.h"
#include "llama-dmtd.h"
#include "llama-flexidepth-train.h"
#include "llama-dmtd-train.h"
#include "llama-fork-common.h"
