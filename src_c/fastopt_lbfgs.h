/* The L-BFGS engine of one problem (issue 17), driven by reverse communication as SciPy's
 * L-BFGS-B `setulb` is: the caller evaluates f and g where the engine asks and calls back.
 * Plain C (no Python.h), no allocation (all state in the struct and in a caller-provided
 * work array of fastopt_lbfgs_work_size() doubles), no global state: usable without the GIL
 * from any thread, each thread driving its own problems. Computes in double. Every path of
 * fastopt (minimize's loop in fastopt/_lbfgs.pyx, the batch loops) drives this one engine.
 *
 * Protocol:
 *     fastopt_lbfgs_init(&s, n, m, work, lower, upper, gtol, ftol, maxls, x);  // x0 projected
 *     loop: evaluate f, g at x  (x may be rounded in place first, e.g. to float32: the engine
 *           reads x back);  code = fastopt_lbfgs_next(&s, x, f, g);
 *       FASTOPT_LBFGS_EVALUATE     x holds the next trial point: evaluate there, call next.
 *       FASTOPT_LBFGS_NEW_ITERATE  (x, f, g) is the next iterate (nit += 1): check maxiter,
 *                                  maxfun, the callback; then call next again with the same
 *                                  x, f, g (unchanged) to continue.
 *       FASTOPT_LBFGS_STOP_*       done; x holds the final iterate, fastopt_lbfgs_f(&s) and
 *                                  fastopt_lbfgs_g(&s) its f and g.
 *
 * The algorithm. L-BFGS (Nocedal 1980, "Updating quasi-Newton matrices with limited
 * storage", Math. Comp. 35; the two-loop recursion of Nocedal & Wright 2006, Algorithm 7.4)
 * with H0 = (s'y / y'y) I from the newest pair, H0 = I before any pair. A pair is skipped,
 * as L-BFGS-B skips it, when s'y <= eps_mach * (-g_k's) (the curvature is not positive
 * relative to the decrease the step predicted); history m keeps the newest m pairs.
 *
 * Line search: Moré & Thuente 1994 ("Line search algorithms with guaranteed sufficient
 * decrease", ACM TOMS 20(3)), ported from MINPACK-2's dcsrch/dcstep, the search SciPy's
 * L-BFGS-B runs, with its constants ftol=1e-3, gtol=0.9, xtol=0.1, stpmin=0 and its step
 * rules: the first iteration starts at stp = min(1/||p||, stpmax) (stp = 1 when every variable
 * has two finite bounds), later ones at stp = 1; at most maxls evaluations per search; a
 * search that ends on a WARNING of dcsrch (stp = stpmax, rounding errors, xtol) accepts its
 * last point, as L-BFGS-B does. A search that fails (no descent direction, or maxls trials)
 * restores the iterate and, when the memory holds pairs, empties it and searches again along
 * the steepest-descent direction (L-BFGS-B's RESTART_FROM_LNSRCH); with an empty memory it
 * stops (FASTOPT_LBFGS_STOP_LINESEARCH, L-BFGS-B's ABNORMAL_TERMINATION_IN_LNSRCH).
 *
 * Bounds: the two-metric projection of Bertsekas 1982 ("Projected Newton methods for
 * optimization problems with simple constraints", SIAM J. Control Optim. 20(2)), with an
 * L-BFGS metric as in Kim, Sra & Dhillon 2010 ("Tackling box-constrained optimization via a
 * new projected quasi-Newton approach", SIAM J. Sci. Comput. 32(6)). At iterate x with
 * gradient g, the eps-active set A holds the variables within eps_k of a bound with g
 * pushing outward (eps_k = min(FASTOPT_LBFGS_EPS_ACTIVE, ||x - P(x - g)||_inf), Bertsekas'
 * rule; 1e-3 measured best of 1e-3, 1e-2, 1e-1 and no cap on random bounded problems). On the
 * free variables F the quasi-Newton step is d_F = -H_F g_F, H_F the L-BFGS inverse built
 * from the pairs restricted to F, (s_F, y_F): A's variables stay put from one iterate to the
 * next, so these are secant pairs of the reduced Hessian B_FF, and H_F approximates its
 * inverse (restricting the full H instead, Z H Z, took 1.45x SciPy's iterations on
 * Rosenbrock with active bounds); a restricted pair with s_F'y_F <= eps_mach y_F'y_F is left
 * out of that direction. A free variable that d would push out through the bound g pushes it
 * to joins A (without this second pass a run can creep along a bound and stop early on
 * ftol), and d_F becomes the model's minimizer on F with those variables pinned at their
 * bounds: d_F = -H_F g_F + H_F E lam, lam solving the k x k system that puts them there
 * (the equality-constrained quasi-Newton step; up to FASTOPT_LBFGS_KMAX of them, else
 * -H_F' g_F' on the smaller F'). Recomputing -H_F' g_F' alone drops the coupling, the change
 * of the other variables' gradient as the pinned ones move to their bounds: on bounded
 * Rosenbrock problems with a strongly curved valley it zigzagged (up to 2.8x SciPy's
 * iterations, and stops on ftol away from the optimum); with the coupling none of 600 random
 * bounded problems exceeds 1.5x (asv_benchmarks/lbfgs_bounds_compare.py). The search direction is p = P(x + d) - x on
 * F and p_i = bound_i - x_i on A (A's variables move onto their bound). H_F is positive
 * definite, so g_F'd_F < 0, and the projection only shortens components; should g'p < 0
 * fail all the same, p = P(x - gamma g) - x, the projected, H0-scaled steepest descent.
 * The Moré-Thuente search runs along x + stp p with stpmax the largest step that stays in
 * the box (>= 1: x + p is in it; 1 on the first iteration, as L-BFGS-B), so every trial
 * point is in the box (each is also clipped into it, against rounding).
 *
 * Stopping, as L-BFGS-B: at each iterate (x0 first) the projected gradient's inf-norm (SciPy's
 * projgr) <= gtol, then (not at x0) (f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol.
 * Non-finite values: a non-finite f or g at x0 stops at once (FASTOPT_LBFGS_STOP_NONFINITE,
 * x = x0); at a trial point of a search they shrink the step (halfway back towards the best
 * step of the search, which also becomes the search's stpmax), a trial counted in maxls. A
 * search that ends on a non-finite trial (after the steepest-descent retry) stops with
 * FASTOPT_LBFGS_STOP_NONFINITE at the last iterate: fastopt's NaN policy (status 3, the last
 * finite iterate), not a line-search failure, since the values, not the model, gave out.
 */
#ifndef FASTOPT_LBFGS_H
#define FASTOPT_LBFGS_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#define FASTOPT_LBFGS_BIG 1e10      /* L-BFGS-B's stpmax without bounds */
#define FASTOPT_LBFGS_EPS_ACTIVE 1e-3 /* the eps-active set's width cap (Bertsekas' eps) */
#define FASTOPT_LBFGS_KMAX 8        /* the most variables the second pass pins (see pin) */

enum {
    FASTOPT_LBFGS_EVALUATE = 0,      /* x holds the next trial point: evaluate there, call next */
    FASTOPT_LBFGS_NEW_ITERATE = 1,   /* (x, f, g) is the next iterate: check, call next again */
    FASTOPT_LBFGS_STOP_GTOL = 2,     /* projected gradient's inf-norm <= gtol */
    FASTOPT_LBFGS_STOP_FTOL = 3,     /* relative reduction of f <= ftol */
    FASTOPT_LBFGS_STOP_NONFINITE = 4,/* f or g non-finite at x0, or at every trial of a search
                                       (status 3); x = the last iterate */
    FASTOPT_LBFGS_STOP_LINESEARCH = 5/* no acceptable step even along steepest descent */
};

/* The Moré-Thuente search's state (dcsrch's isave/dsave). */
typedef struct {
    int brackt, stage;
    double ginit, gtest, gx, gy, finit, fx, fy, stx, sty, stmin, stmax, width, width1;
} fastopt_dcsrch;

enum { FASTOPT_DCSRCH_FG, FASTOPT_DCSRCH_CONV, FASTOPT_DCSRCH_WARN };

typedef struct fastopt_lbfgs {
    ptrdiff_t n;
    int m;              /* history size */
    int count, head;    /* pairs stored; index of the oldest */
    int phase;          /* where next() resumes (FASTOPT_LBFGS_PHASE_*) */
    int iter;           /* iterates accepted (x0 excluded) */
    int ifun;           /* evaluations in the current search */
    int maxls;
    int bounded, boxed; /* any finite bound; every variable with two finite bounds */
    int nonfinite;      /* the search's last trial gave a non-finite f or g */
    double gtol, ftol;
    double f;           /* f at the iterate x_k */
    double gamma;       /* H0's scale */
    double stp, stpmax, gd0;  /* the search's step, its limit, g_k'p */
    fastopt_dcsrch ls;
    const double *lower, *upper;
    double *S, *Y;      /* m x n each, rows in a ring */
    double *rho, *rhof, *alpha; /* m each: 1/s'y; 1/s_F'y_F on the free set; the two-loop's */
    double *xk, *gk, *p, *z;    /* the iterate, its gradient, the direction, the free mask */
    double *U, *M;
} fastopt_lbfgs;

enum { FASTOPT_LBFGS_PHASE_FIRST, FASTOPT_LBFGS_PHASE_SEARCH, FASTOPT_LBFGS_PHASE_ACCEPTED,
       FASTOPT_LBFGS_PHASE_DONE };

/* Doubles of scratch one problem needs: 2 m n + 3 m + 4 n + k n + k k, k = min(n, KMAX). */
static inline size_t fastopt_lbfgs_work_size(ptrdiff_t n, int history)
{
    size_t k = (size_t)(n < FASTOPT_LBFGS_KMAX ? n : FASTOPT_LBFGS_KMAX);
    return (size_t)(2 * (size_t)history * (size_t)n + 3 * (size_t)history + 4 * (size_t)n)
           + k * (size_t)n + k * k;
}

/* The iterate, f and g there (after a stop: the final ones; n doubles for x and g). */
static inline const double *fastopt_lbfgs_x(const fastopt_lbfgs *s) { return s->xk; }
static inline double fastopt_lbfgs_f(const fastopt_lbfgs *s) { return s->f; }
static inline const double *fastopt_lbfgs_g(const fastopt_lbfgs *s) { return s->gk; }

/* ---------------------------------------------------------------------------------------- */
/* Moré-Thuente (MINPACK-2 dcstep): update the interval of uncertainty and the next step. */
static inline void fastopt_dcstep(double *stx, double *fx, double *dx, double *sty, double *fy,
                                  double *dy, double *stp, double fp, double dp, int *brackt,
                                  double stpmin, double stpmax)
{
    double sgnd = dp * (*dx / fabs(*dx));
    double theta, s, gamma, p, q, r, stpc, stpq, stpf;
    if (fp > *fx) {
        /* A higher function value: the minimum is bracketed. */
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        s = fmax(fabs(theta), fmax(fabs(*dx), fabs(dp)));
        gamma = s * sqrt((theta / s) * (theta / s) - (*dx / s) * (dp / s));
        if (*stp < *stx) gamma = -gamma;
        p = (gamma - *dx) + theta;
        q = ((gamma - *dx) + gamma) + dp;
        r = p / q;
        stpc = *stx + r * (*stp - *stx);
        stpq = *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        if (fabs(stpc - *stx) < fabs(stpq - *stx))
            stpf = stpc;
        else
            stpf = stpc + (stpq - stpc) / 2.0;
        *brackt = 1;
    } else if (sgnd < 0.0) {
        /* A lower value, derivatives of opposite sign: the minimum is bracketed. */
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        s = fmax(fabs(theta), fmax(fabs(*dx), fabs(dp)));
        gamma = s * sqrt((theta / s) * (theta / s) - (*dx / s) * (dp / s));
        if (*stp > *stx) gamma = -gamma;
        p = (gamma - dp) + theta;
        q = ((gamma - dp) + gamma) + *dx;
        r = p / q;
        stpc = *stp + r * (*stx - *stp);
        stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = fabs(stpc - *stp) > fabs(stpq - *stp) ? stpc : stpq;
        *brackt = 1;
    } else if (fabs(dp) < fabs(*dx)) {
        /* A lower value, same sign, the derivative's magnitude decreases. */
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        s = fmax(fabs(theta), fmax(fabs(*dx), fabs(dp)));
        gamma = s * sqrt(fmax(0.0, (theta / s) * (theta / s) - (*dx / s) * (dp / s)));
        if (*stp > *stx) gamma = -gamma;
        p = (gamma - dp) + theta;
        q = (gamma + (*dx - dp)) + gamma;
        r = p / q;
        if (r < 0.0 && gamma != 0.0)
            stpc = *stp + r * (*stx - *stp);
        else if (*stp > *stx)
            stpc = stpmax;
        else
            stpc = stpmin;
        stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if (*brackt) {
            stpf = fabs(stpc - *stp) < fabs(stpq - *stp) ? stpc : stpq;
            if (*stp > *stx)
                stpf = fmin(*stp + 0.66 * (*sty - *stp), stpf);
            else
                stpf = fmax(*stp + 0.66 * (*sty - *stp), stpf);
        } else {
            stpf = fabs(stpc - *stp) > fabs(stpq - *stp) ? stpc : stpq;
            stpf = fmin(stpmax, stpf);
            stpf = fmax(stpmin, stpf);
        }
    } else {
        /* A lower value, same sign, the derivative's magnitude does not decrease. */
        if (*brackt) {
            theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
            s = fmax(fabs(theta), fmax(fabs(*dy), fabs(dp)));
            gamma = s * sqrt((theta / s) * (theta / s) - (*dy / s) * (dp / s));
            if (*stp > *sty) gamma = -gamma;
            p = (gamma - dp) + theta;
            q = ((gamma - dp) + gamma) + *dy;
            r = p / q;
            stpc = *stp + r * (*sty - *stp);
            stpf = stpc;
        } else if (*stp > *stx) {
            stpf = stpmax;
        } else {
            stpf = stpmin;
        }
    }
    /* Update the interval which contains a minimizer. */
    if (fp > *fx) {
        *sty = *stp; *fy = fp; *dy = dp;
    } else {
        if (sgnd < 0.0) { *sty = *stx; *fy = *fx; *dy = *dx; }
        *stx = *stp; *fx = fp; *dx = dp;
    }
    *stp = stpf;
}

/* MINPACK-2 dcsrch's START (ftol, gtol: the search's, stpmin = 0): g < 0 required. */
static inline void fastopt_dcsrch_start(fastopt_dcsrch *ls, double f, double g, double stp,
                                        double ftol, double stpmax)
{
    ls->brackt = 0;
    ls->stage = 1;
    ls->finit = f;
    ls->ginit = g;
    ls->gtest = ftol * g;
    ls->width = stpmax;
    ls->width1 = stpmax / 0.5;
    ls->stx = 0.0; ls->fx = f; ls->gx = g;
    ls->sty = 0.0; ls->fy = f; ls->gy = g;
    ls->stmin = 0.0;
    ls->stmax = stp + 4.0 * stp;
}

/* dcsrch after an evaluation at *stp (f, g = the derivative along the search); returns
 * FG (evaluate at the new *stp), CONV or WARN (accept the point just evaluated). */
static inline int fastopt_dcsrch_next(fastopt_dcsrch *ls, double f, double g, double *stp,
                                      double gtol, double xtol, double stpmax)
{
    const double stpmin = 0.0;
    int task = FASTOPT_DCSRCH_FG;
    double ftest = ls->finit + *stp * ls->gtest;
    if (ls->stage == 1 && f <= ftest && g >= 0.0) ls->stage = 2;
    if (ls->brackt && (*stp <= ls->stmin || *stp >= ls->stmax)) task = FASTOPT_DCSRCH_WARN;
    if (ls->brackt && ls->stmax - ls->stmin <= xtol * ls->stmax) task = FASTOPT_DCSRCH_WARN;
    if (*stp == stpmax && f <= ftest && g <= ls->gtest) task = FASTOPT_DCSRCH_WARN;
    if (*stp == stpmin && (f > ftest || g >= ls->gtest)) task = FASTOPT_DCSRCH_WARN;
    if (f <= ftest && fabs(g) <= gtol * (-ls->ginit)) task = FASTOPT_DCSRCH_CONV;
    if (task != FASTOPT_DCSRCH_FG) return task;
    if (ls->stage == 1 && f <= ls->fx && f > ftest) {
        /* The modified function predicts the step while the decrease is not sufficient. */
        double fm = f - *stp * ls->gtest, fxm = ls->fx - ls->stx * ls->gtest;
        double fym = ls->fy - ls->sty * ls->gtest, gm = g - ls->gtest;
        double gxm = ls->gx - ls->gtest, gym = ls->gy - ls->gtest;
        fastopt_dcstep(&ls->stx, &fxm, &gxm, &ls->sty, &fym, &gym, stp, fm, gm, &ls->brackt,
                       ls->stmin, ls->stmax);
        ls->fx = fxm + ls->stx * ls->gtest;
        ls->fy = fym + ls->sty * ls->gtest;
        ls->gx = gxm + ls->gtest;
        ls->gy = gym + ls->gtest;
    } else {
        fastopt_dcstep(&ls->stx, &ls->fx, &ls->gx, &ls->sty, &ls->fy, &ls->gy, stp, f, g,
                       &ls->brackt, ls->stmin, ls->stmax);
    }
    if (ls->brackt) {  /* bisect when the interval did not shrink enough */
        if (fabs(ls->sty - ls->stx) >= 0.66 * ls->width1) *stp = ls->stx + 0.5 * (ls->sty - ls->stx);
        ls->width1 = ls->width;
        ls->width = fabs(ls->sty - ls->stx);
    }
    if (ls->brackt) {
        ls->stmin = fmin(ls->stx, ls->sty);
        ls->stmax = fmax(ls->stx, ls->sty);
    } else {
        ls->stmin = *stp + 1.1 * (*stp - ls->stx);
        ls->stmax = *stp + 4.0 * (*stp - ls->stx);
    }
    *stp = fmax(*stp, stpmin);
    *stp = fmin(*stp, stpmax);
    if ((ls->brackt && (*stp <= ls->stmin || *stp >= ls->stmax))
        || (ls->brackt && ls->stmax - ls->stmin <= xtol * ls->stmax))
        *stp = ls->stx;  /* no further progress possible: the best step so far */
    return FASTOPT_DCSRCH_FG;
}

/* ---------------------------------------------------------------------------------------- */

static inline double fastopt_lbfgs_dot(ptrdiff_t n, const double *a, const double *b)
{
    double t = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) t += a[i] * b[i];
    return t;
}

static inline int fastopt_lbfgs_finite(ptrdiff_t n, double f, const double *g)
{
    double t = f;
    for (ptrdiff_t i = 0; i < n; i++) t += 0.0 * g[i];  /* NaN iff some value is not finite */
    return t == t && fabs(t) <= DBL_MAX;
}

static inline double fastopt_lbfgs_clip(const fastopt_lbfgs *s, ptrdiff_t i, double v)
{
    if (s->lower != NULL) {
        if (v < s->lower[i]) v = s->lower[i];
        if (v > s->upper[i]) v = s->upper[i];
    }
    return v;
}

/* SciPy's projgr: the inf-norm of the projected gradient at (x, g). */
static inline double fastopt_lbfgs_projgr(const fastopt_lbfgs *s, const double *x,
                                          const double *g)
{
    double norm = 0.0;
    for (ptrdiff_t i = 0; i < s->n; i++) {
        double gi = g[i];
        if (s->lower != NULL) {
            if (gi < 0.0) {
                if (s->upper[i] < HUGE_VAL) gi = fmax(x[i] - s->upper[i], gi);
            } else {
                if (s->lower[i] > -HUGE_VAL) gi = fmin(x[i] - s->lower[i], gi);
            }
        }
        norm = fmax(norm, fabs(gi));
    }
    return norm;
}

/* Which bound variable i of the iterate is eps-active at: -1 lower, 1 upper, 0 none. */
static inline int fastopt_lbfgs_active(const fastopt_lbfgs *s, ptrdiff_t i, double eps)
{
    double xi = s->xk[i], gi = s->gk[i];
    if (gi > 0.0 && xi <= s->lower[i] + eps) return -1;
    if (gi < 0.0 && xi >= s->upper[i] - eps) return 1;
    return 0;
}

/* p = -H g at the iterate by the two-loop recursion. With bounds, on the free variables
 * only (z[i] = 1 free, 0 eps-active): the pairs restricted to them, (z s, z y), build the
 * inverse of the reduced Hessian (for held variables s_i = 0, so z y = B_FF z s: the
 * restricted pairs are secant pairs of the reduced problem), and a restricted pair without
 * positive curvature (s_F'y_F <= eps_mach y_F'y_F) is left out of this direction. */
static inline void fastopt_lbfgs_two_loop_v(fastopt_lbfgs *s, const double *z, const double *v,
                                            double *q)
{
    ptrdiff_t n = s->n;
    double gamma = s->gamma;
    int newest = 1;
    for (ptrdiff_t i = 0; i < n; i++) q[i] = z != NULL ? z[i] * v[i] : v[i];
    for (int k = s->count - 1; k >= 0; k--) {
        int j = (s->head + k) % s->m;
        const double *sj = s->S + (ptrdiff_t)j * n, *yj = s->Y + (ptrdiff_t)j * n;
        double a;
        if (z != NULL) {
            double sy = 0.0, yy = 0.0;
            for (ptrdiff_t i = 0; i < n; i++) {
                double yi = z[i] * yj[i];
                sy += sj[i] * yi;
                yy += yi * yi;
            }
            if (!(sy > DBL_EPSILON * yy)) { s->alpha[j] = 0.0; s->rhof[j] = 0.0; continue; }
            s->rhof[j] = 1.0 / sy;
            if (newest) gamma = sy / yy;
            newest = 0;
            a = s->rhof[j] * fastopt_lbfgs_dot(n, sj, q);
            for (ptrdiff_t i = 0; i < n; i++) q[i] -= a * z[i] * yj[i];
        } else {
            a = s->rho[j] * fastopt_lbfgs_dot(n, sj, q);
            for (ptrdiff_t i = 0; i < n; i++) q[i] -= a * yj[i];
        }
        s->alpha[j] = a;
    }
    for (ptrdiff_t i = 0; i < n; i++) q[i] *= gamma;
    for (int k = 0; k < s->count; k++) {
        int j = (s->head + k) % s->m;
        const double *sj = s->S + (ptrdiff_t)j * n, *yj = s->Y + (ptrdiff_t)j * n;
        if (z != NULL) {
            if (s->rhof[j] == 0.0) continue;
            double b = s->rhof[j] * fastopt_lbfgs_dot(n, yj, q);  /* q is 0 off the free set */
            for (ptrdiff_t i = 0; i < n; i++) q[i] += (s->alpha[j] - b) * z[i] * sj[i];
        } else {
            double b = s->rho[j] * fastopt_lbfgs_dot(n, yj, q);
            for (ptrdiff_t i = 0; i < n; i++) q[i] += (s->alpha[j] - b) * sj[i];
        }
    }
    for (ptrdiff_t i = 0; i < n; i++) q[i] = -q[i];
}

static inline void fastopt_lbfgs_two_loop(fastopt_lbfgs *s, const double *z)
{
    fastopt_lbfgs_two_loop_v(s, z, s->gk, s->p);
}

/* The second pass's step on F with the k variables idx (in F, k <= KMAX) pinned at their
 * bounds, p_idx = a: the minimizer of the model g_F'p + p'B_F p/2 (B_F = H_F^-1) subject to
 * p_idx = a, which is p = p0 + H_F E lam (p0 = -H_F g_F, E the columns e_idx) with
 * (H_F)_idx,idx lam = a - p0_idx: k more two-loop passes and a k x k solve. Unlike
 * recomputing -H_F' g_F' on F' = F \ idx, it keeps the coupling: moving the pinned
 * variables onto their bounds changes the gradient of the others (B_F'idx a), which the
 * model accounts for. Returns 0 (p unchanged) when the k x k system is singular. */
static inline int fastopt_lbfgs_pin(fastopt_lbfgs *s, const int *idx, int k, const double *a)
{
    ptrdiff_t n = s->n;
    double *M = s->M, rhs[FASTOPT_LBFGS_KMAX];
    for (int j = 0; j < k; j++) {
        double *u = s->U + (ptrdiff_t)j * n;
        for (ptrdiff_t i = 0; i < n; i++) u[i] = 0.0;
        u[idx[j]] = 1.0;
        fastopt_lbfgs_two_loop_v(s, s->z, u, u);
    }
    for (int l = 0; l < k; l++) {
        rhs[l] = s->p[idx[l]] - a[l];
        for (int j = 0; j < k; j++) M[l * k + j] = s->U[(ptrdiff_t)j * n + idx[l]];
    }
    for (int c = 0; c < k; c++) {  /* Gaussian elimination, partial pivoting */
        int piv = c;
        for (int r = c + 1; r < k; r++) if (fabs(M[r * k + c]) > fabs(M[piv * k + c])) piv = r;
        if (!(fabs(M[piv * k + c]) > 0.0)) return 0;  /* p untouched so far */
        if (piv != c) {
            double t;
            for (int j = 0; j < k; j++) {
                t = M[c * k + j]; M[c * k + j] = M[piv * k + j]; M[piv * k + j] = t;
            }
            t = rhs[c]; rhs[c] = rhs[piv]; rhs[piv] = t;
        }
        for (int r = c + 1; r < k; r++) {
            double f = M[r * k + c] / M[c * k + c];
            for (int j = c; j < k; j++) M[r * k + j] -= f * M[c * k + j];
            rhs[r] -= f * rhs[c];
        }
    }
    for (int c = k - 1; c >= 0; c--) {
        double t = rhs[c];
        for (int j = c + 1; j < k; j++) t -= M[c * k + j] * rhs[j];
        rhs[c] = t / M[c * k + c];
    }
    for (int j = 0; j < k; j++) if (!isfinite(rhs[j])) return 0;
    for (int j = 0; j < k; j++) {
        const double *u = s->U + (ptrdiff_t)j * n;
        for (ptrdiff_t i = 0; i < n; i++) s->p[i] -= u[i] * rhs[j];
    }
    return 1;
}

/* The search direction p at the iterate (xk, gk); returns g'p (not < 0: no descent). */
static inline double fastopt_lbfgs_direction(fastopt_lbfgs *s)
{
    ptrdiff_t n = s->n;
    const double *x = s->xk, *g = s->gk;
    double *p = s->p;
    double gp = 0.0, w = 0.0, eps;
    if (s->lower == NULL) {
        fastopt_lbfgs_two_loop(s, NULL);
        return fastopt_lbfgs_dot(n, g, p);
    }
    for (ptrdiff_t i = 0; i < n; i++)  /* w = ||x - P(x - g)||_inf, Bertsekas' w_k */
        w = fmax(w, fabs(fastopt_lbfgs_clip(s, i, x[i] - g[i]) - x[i]));
    eps = fmin(FASTOPT_LBFGS_EPS_ACTIVE, w);
    for (ptrdiff_t i = 0; i < n; i++) s->z[i] = fastopt_lbfgs_active(s, i, eps) ? 0.0 : 1.0;
    fastopt_lbfgs_two_loop(s, s->z);
    {   /* the second pass: free variables d pushes out through the bound g pushes them to */
        int idx[FASTOPT_LBFGS_KMAX], k = 0;
        double a[FASTOPT_LBFGS_KMAX];
        for (ptrdiff_t i = 0; i < n; i++) {
            if (s->z[i] != 0.0 && ((g[i] > 0.0 && x[i] + p[i] < s->lower[i]) ||
                                   (g[i] < 0.0 && x[i] + p[i] > s->upper[i]))) {
                if (k < FASTOPT_LBFGS_KMAX) {
                    idx[k] = (int)i;
                    a[k] = (g[i] > 0.0 ? s->lower[i] : s->upper[i]) - x[i];
                }
                k++;
            }
        }
        if (k > 0 && k <= FASTOPT_LBFGS_KMAX && fastopt_lbfgs_pin(s, idx, k, a)) {
            for (int j = 0; j < k; j++) s->z[idx[j]] = 0.0;
        } else if (k > 0) {  /* too many (or a singular system): d_F again on the smaller F */
            for (ptrdiff_t i = 0; i < n; i++)
                if (s->z[i] != 0.0 && ((g[i] > 0.0 && x[i] + p[i] < s->lower[i]) ||
                                       (g[i] < 0.0 && x[i] + p[i] > s->upper[i])))
                    s->z[i] = 0.0;
            fastopt_lbfgs_two_loop(s, s->z);
        }
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        if (s->z[i] == 0.0) p[i] = (g[i] > 0.0 ? s->lower[i] : s->upper[i]) - x[i];
        else p[i] = fastopt_lbfgs_clip(s, i, x[i] + p[i]) - x[i];
        gp += g[i] * p[i];
    }
    if (gp < 0.0) return gp;
    /* Not a descent direction: the projected steepest descent, scaled by H0. */
    gp = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) {
        p[i] = fastopt_lbfgs_clip(s, i, x[i] - s->gamma * g[i]) - x[i];
        gp += g[i] * p[i];
    }
    return gp;
}

/* The largest step along p that stays in the box (FASTOPT_LBFGS_BIG without bounds). */
static inline double fastopt_lbfgs_max_step(const fastopt_lbfgs *s)
{
    double stpmx = FASTOPT_LBFGS_BIG;
    if (s->lower == NULL) return stpmx;
    if (s->iter == 0) return 1.0;
    for (ptrdiff_t i = 0; i < s->n; i++) {
        double a1 = s->p[i], a2;
        if (a1 < 0.0 && s->lower[i] > -HUGE_VAL) {
            a2 = s->lower[i] - s->xk[i];
            if (a2 >= 0.0) stpmx = 0.0;
            else if (a1 * stpmx < a2) stpmx = a2 / a1;
        } else if (a1 > 0.0 && s->upper[i] < HUGE_VAL) {
            a2 = s->upper[i] - s->xk[i];
            if (a2 <= 0.0) stpmx = 0.0;
            else if (a1 * stpmx > a2) stpmx = a2 / a1;
        }
    }
    return stpmx;
}

/* x = P(xk + stp p). */
static inline void fastopt_lbfgs_trial(const fastopt_lbfgs *s, double *x)
{
    for (ptrdiff_t i = 0; i < s->n; i++)
        x[i] = s->stp == 1.0 ? fastopt_lbfgs_clip(s, i, s->xk[i] + s->p[i])
                             : fastopt_lbfgs_clip(s, i, s->xk[i] + s->stp * s->p[i]);
}

/* Start a search from the iterate: direction, first step, first trial point in x. Returns
 * EVALUATE, or STOP_LINESEARCH when no descent direction exists. */
static inline int fastopt_lbfgs_search(fastopt_lbfgs *s, double *x)
{
    double gp = fastopt_lbfgs_direction(s);
    if (!(gp < 0.0)) {
        if (s->count > 0) {  /* forget the memory and try steepest descent */
            s->count = 0; s->head = 0; s->gamma = 1.0;
            gp = fastopt_lbfgs_direction(s);
        }
        if (!(gp < 0.0)) {
            memcpy(x, s->xk, (size_t)s->n * sizeof(double));
            s->phase = FASTOPT_LBFGS_PHASE_DONE;
            return FASTOPT_LBFGS_STOP_LINESEARCH;
        }
    }
    s->gd0 = gp;
    s->nonfinite = 0;
    s->stpmax = fastopt_lbfgs_max_step(s);
    if (s->iter == 0 && !s->boxed) {
        double pnorm = sqrt(fastopt_lbfgs_dot(s->n, s->p, s->p));
        s->stp = fmin(1.0 / pnorm, s->stpmax);
    } else {
        s->stp = fmin(1.0, s->stpmax);
    }
    if (!(s->stp > 0.0)) {  /* no room to move (rounding at a bound) */
        memcpy(x, s->xk, (size_t)s->n * sizeof(double));
        s->phase = FASTOPT_LBFGS_PHASE_DONE;
        return FASTOPT_LBFGS_STOP_LINESEARCH;
    }
    fastopt_dcsrch_start(&s->ls, s->f, gp, s->stp, 1e-3, s->stpmax);
    s->ifun = 1;
    fastopt_lbfgs_trial(s, x);
    s->phase = FASTOPT_LBFGS_PHASE_SEARCH;
    return FASTOPT_LBFGS_EVALUATE;
}

/* Set up a problem; projects x (x0 in) into the box. lower/upper: NULL or n values each
 * (both or neither; +-inf for no bound). `work`: fastopt_lbfgs_work_size(n, history)
 * doubles, owned by the caller for the run, as are lower and upper. history >= 1. */
static inline void fastopt_lbfgs_init(fastopt_lbfgs *s, ptrdiff_t n, int history, double *work,
                                      const double *lower, const double *upper, double gtol,
                                      double ftol, int maxls, double *x)
{
    s->n = n;
    s->m = history;
    s->count = 0;
    s->head = 0;
    s->phase = FASTOPT_LBFGS_PHASE_FIRST;
    s->iter = 0;
    s->ifun = 0;
    s->maxls = maxls;
    s->gtol = gtol;
    s->ftol = ftol;
    s->f = NAN;
    s->gamma = 1.0;
    s->stp = 0.0;
    s->stpmax = 0.0;
    s->gd0 = 0.0;
    s->lower = (lower != NULL && upper != NULL) ? lower : NULL;
    s->upper = s->lower != NULL ? upper : NULL;
    s->S = work;
    s->Y = s->S + (ptrdiff_t)history * n;
    s->rho = s->Y + (ptrdiff_t)history * n;
    s->rhof = s->rho + history;
    s->alpha = s->rhof + history;
    s->xk = s->alpha + history;
    s->gk = s->xk + n;
    s->p = s->gk + n;
    s->z = s->p + n;
    s->U = s->z + n;
    s->M = s->U + (n < FASTOPT_LBFGS_KMAX ? n : FASTOPT_LBFGS_KMAX) * n;
    s->bounded = 0;
    s->nonfinite = 0;
    s->boxed = s->lower != NULL;
    if (s->lower != NULL) {
        for (ptrdiff_t i = 0; i < n; i++) {
            int lo = s->lower[i] > -HUGE_VAL, up = s->upper[i] < HUGE_VAL;
            if (lo || up) s->bounded = 1;
            if (!(lo && up)) s->boxed = 0;
            x[i] = fastopt_lbfgs_clip(s, i, x[i]);
        }
        if (!s->bounded) { s->lower = NULL; s->upper = NULL; s->boxed = 0; }
    }
    for (ptrdiff_t i = 0; i < n; i++) { s->xk[i] = x[i]; s->gk[i] = NAN; }
}

/* Store the pair (x - xk, g - gk) unless its curvature is not positive (L-BFGS-B's rule).
 * The test comes before the write: with the memory full the slot is the oldest pair's,
 * which a skipped pair must leave intact. */
static inline void fastopt_lbfgs_update(fastopt_lbfgs *s, const double *x, const double *g)
{
    ptrdiff_t n = s->n;
    int j = s->count < s->m ? (s->head + s->count) % s->m : s->head;
    double *sj = s->S + (ptrdiff_t)j * n, *yj = s->Y + (ptrdiff_t)j * n;
    double sy = 0.0, yy = 0.0, gs = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) {
        double si = x[i] - s->xk[i], yi = g[i] - s->gk[i];
        sy += si * yi; yy += yi * yi; gs += s->gk[i] * si;
    }
    if (!(sy > DBL_EPSILON * -gs) || !(yy > 0.0)) return;  /* skipped */
    for (ptrdiff_t i = 0; i < n; i++) {
        sj[i] = x[i] - s->xk[i];
        yj[i] = g[i] - s->gk[i];
    }
    s->rho[j] = 1.0 / sy;
    s->gamma = sy / yy;
    if (s->count < s->m) s->count++;
    else s->head = (s->head + 1) % s->m;
}

/* One step of the protocol: (f, g) were evaluated at x. Returns FASTOPT_LBFGS_*. */
static inline int fastopt_lbfgs_next(fastopt_lbfgs *s, double *x, double f, const double *g)
{
    ptrdiff_t n = s->n;
    switch (s->phase) {
    case FASTOPT_LBFGS_PHASE_FIRST:
        memcpy(s->xk, x, (size_t)n * sizeof(double));
        memcpy(s->gk, g, (size_t)n * sizeof(double));
        s->f = f;
        if (!fastopt_lbfgs_finite(n, f, g)) {
            s->phase = FASTOPT_LBFGS_PHASE_DONE;
            return FASTOPT_LBFGS_STOP_NONFINITE;
        }
        if (fastopt_lbfgs_projgr(s, x, g) <= s->gtol) {
            s->phase = FASTOPT_LBFGS_PHASE_DONE;
            return FASTOPT_LBFGS_STOP_GTOL;
        }
        return fastopt_lbfgs_search(s, x);

    case FASTOPT_LBFGS_PHASE_SEARCH: {
        int task;
        if (!fastopt_lbfgs_finite(n, f, g)) {
            /* Shrink halfway back towards the best step; it caps the search. */
            double stp = s->ls.stx + 0.5 * (s->stp - s->ls.stx);
            s->nonfinite = 1;
            s->stpmax = stp;
            s->stp = stp;
            task = (stp > s->ls.stx) ? FASTOPT_DCSRCH_FG : FASTOPT_DCSRCH_WARN;
            if (task == FASTOPT_DCSRCH_WARN) goto failed;
        } else {
            double gd = fastopt_lbfgs_dot(n, g, s->p);  /* the derivative along p */
            s->nonfinite = 0;
            task = fastopt_dcsrch_next(&s->ls, f, gd, &s->stp, 0.9, 0.1, s->stpmax);
            if (task != FASTOPT_DCSRCH_FG) {
                s->phase = FASTOPT_LBFGS_PHASE_ACCEPTED;
                s->iter++;
                return FASTOPT_LBFGS_NEW_ITERATE;
            }
        }
        if (s->ifun >= s->maxls) goto failed;
        s->ifun++;
        fastopt_lbfgs_trial(s, x);
        return FASTOPT_LBFGS_EVALUATE;
    failed:
        memcpy(x, s->xk, (size_t)n * sizeof(double));
        if (s->count > 0) {  /* L-BFGS-B's RESTART_FROM_LNSRCH */
            s->count = 0; s->head = 0; s->gamma = 1.0;
            return fastopt_lbfgs_search(s, x);
        }
        s->phase = FASTOPT_LBFGS_PHASE_DONE;
        return s->nonfinite ? FASTOPT_LBFGS_STOP_NONFINITE : FASTOPT_LBFGS_STOP_LINESEARCH;
    }

    case FASTOPT_LBFGS_PHASE_ACCEPTED: {
        double fold = s->f;
        if (fastopt_lbfgs_projgr(s, x, g) <= s->gtol) {
            memcpy(s->xk, x, (size_t)n * sizeof(double));
            memcpy(s->gk, g, (size_t)n * sizeof(double));
            s->f = f;
            s->phase = FASTOPT_LBFGS_PHASE_DONE;
            return FASTOPT_LBFGS_STOP_GTOL;
        }
        if (fold - f <= s->ftol * fmax(fmax(fabs(fold), fabs(f)), 1.0)) {
            memcpy(s->xk, x, (size_t)n * sizeof(double));
            memcpy(s->gk, g, (size_t)n * sizeof(double));
            s->f = f;
            s->phase = FASTOPT_LBFGS_PHASE_DONE;
            return FASTOPT_LBFGS_STOP_FTOL;
        }
        fastopt_lbfgs_update(s, x, g);
        memcpy(s->xk, x, (size_t)n * sizeof(double));
        memcpy(s->gk, g, (size_t)n * sizeof(double));
        s->f = f;
        return fastopt_lbfgs_search(s, x);
    }

    default:
        return FASTOPT_LBFGS_STOP_LINESEARCH;
    }
}

#endif
