/* The floor of the minimize benchmarks: Adam on the 2-D Rosenbrock function written as a
 * plain scalar C loop, with nothing a library adds (no checks, no stopping rules, no function
 * pointers, no state arrays). Adam as torch.optim writes it (bias corrections from running
 * products of the betas, as a C programmer would keep them). Used only by the benchmarks,
 * through fastopt/_objectives.pyx. tests/test_baselines.py checks it against the reference,
 * fastopt._reference.adam: the running products make it differ from the reference's beta**t
 * by an ulp or so, hence a tolerance there, not bitwise equality. */
#ifndef FASTOPT_PLAIN_ADAM_H
#define FASTOPT_PLAIN_ADAM_H

#include <float.h>
#include <math.h>

/* Run `iters` Adam steps from x[0..1] in place; returns f at the last evaluated point. */
static inline double fastopt_plain_adam_rosenbrock2(double *x, long iters, double lr,
                                                   double beta1, double beta2, double eps)
{
    double m[2] = {0.0, 0.0}, v[2] = {0.0, 0.0}, g[2];
    double beta1_pow = 1.0, beta2_pow = 1.0, f = 0.0;
    for (long t = 1; t <= iters; t++) {
        double a = x[1] - x[0] * x[0], b = 1.0 - x[0];
        f = 100.0 * a * a + b * b;
        g[0] = -400.0 * x[0] * a - 2.0 * b;
        g[1] = 200.0 * a;
        beta1_pow *= beta1;
        beta2_pow *= beta2;
        if (beta1_pow < DBL_MIN) beta1_pow = 0.0;  /* else stuck at a slow subnormal */
        if (beta2_pow < DBL_MIN) beta2_pow = 0.0;
        double step_size = lr / (1.0 - beta1_pow);
        double bias_correction2_sqrt = sqrt(1.0 - beta2_pow);
        for (int i = 0; i < 2; i++) {
            m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
            v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
            x[i] -= step_size * m[i] / (sqrt(v[i]) / bias_correction2_sqrt + eps);
        }
    }
    return f;
}

#endif
