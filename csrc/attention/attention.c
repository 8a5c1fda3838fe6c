/* CSR-sparse attention core, instantiated for float/double values and
 * int32/int64 indices (see fk_attention.h). */
#include <math.h>

#include "fk_attention.h"
#include "../common/fk_simd.h"

#define FK_T float
#define FK_I int32_t
#define FK_SUFFIX f32_i32
#define FK_EXP expf
#define FK_LOG logf
#include "attention_impl.h"
#undef FK_I
#undef FK_SUFFIX

#define FK_I int64_t
#define FK_SUFFIX f32_i64
#include "attention_impl.h"
#undef FK_T
#undef FK_I
#undef FK_SUFFIX
#undef FK_EXP
#undef FK_LOG

#define FK_T double
#define FK_I int32_t
#define FK_SUFFIX f64_i32
#define FK_EXP exp
#define FK_LOG log
#include "attention_impl.h"
#undef FK_I
#undef FK_SUFFIX

#define FK_I int64_t
#define FK_SUFFIX f64_i64
#include "attention_impl.h"
#undef FK_T
#undef FK_I
#undef FK_SUFFIX
#undef FK_EXP
#undef FK_LOG
