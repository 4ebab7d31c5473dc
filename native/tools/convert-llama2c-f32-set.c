// The llama2.c converter's one call into the CPU backend, ggml_set_f32_nd, for builds where that
// backend is a module loaded at run time, which a program cannot link. The converter only stores
// F32 weights into tensors in host memory, which needs no CPU kernel.
#include "ggml.h"
#include "ggml-cpu.h"

void ggml_set_f32_nd(const struct ggml_tensor * tensor, int i0, int i1, int i2, int i3, float value) {
    GGML_ASSERT(tensor->type == GGML_TYPE_F32);
    char * at = (char *) tensor->data + i0 * tensor->nb[0] + i1 * tensor->nb[1] + i2 * tensor->nb[2] + i3 * tensor->nb[3];
    *(float *) at = value;
}
