/* The OpenCL launcher table indexed by enum fr_op: each op family registers its launchers here. */
#include "opencl/opencl_internal.h"

static struct fr_cl_op table[FR_OP_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fr_cl_ops_init(void)
{
    fr_cl_register_core(table);
    fr_cl_register_nn(table);
    fr_cl_register_loss(table);
    fr_cl_register_optim(table);
    fr_cl_register_augment(table);
    fr_cl_register_dist(table);
}

const struct fr_cl_op *fr_cl_ops(void)
{
    pthread_once(&once, fr_cl_ops_init);
    return table;
}

struct fr_cl_op fr_cl_ops_override(enum fr_op op, struct fr_cl_op e)
{
    fr_cl_ops();
    struct fr_cl_op old = table[op];
    table[op] = e;
    return old;
}
