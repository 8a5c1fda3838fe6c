/* The screening of one event against one tile (fk_locate.h, step 1), for one
 * instruction set; locate.c includes it once per ISA with these defined:
 *   FK_ISA            name suffix (base, avx2, avx512)
 *   FK_ISA_ATTR       function attributes: empty, or the target() the ISA needs
 *   FK_VEC            the vector type, FK_VW doubles (a plain double for FK_VW 1)
 *   FK_VW             doubles per vector
 *   FK_MULADD(a,b,c)  a * b + c, fused where the ISA has it
 *   FK_SET1(x)        a vector of x
 * The sums of a block of positions stay in registers over the stations.  Their rounding, fused or not, in any order, is within
 * the bound the screening allows for (fk_locate.h): only the exact step,
 * never contracted, decides a result, so results do not depend on the ISA. */

#define FK_SCAT_(a, b) a##_##b
#define FK_SCAT(a, b) FK_SCAT_(a, b)

FK_ISA_ATTR
static void FK_SCAT(sums, FK_ISA)(const double *FK_RESTRICT terms,
                                         const double *FK_RESTRICT gg_all,
                                         const double *FK_RESTRICT d,
                                         const int64_t *FK_RESTRICT sta, ptrdiff_t n,
                                         int all_stations, ptrdiff_t nq,
                                         double *FK_RESTRICT gd_out,
                                         double *FK_RESTRICT gg_out)
{
    /* V vectors of positions per block; two partial sums of gd (even and odd
     * stations) so that enough multiply-adds are in flight */
    enum { V = 4, W = V * FK_VW };
    for (ptrdiff_t q0 = 0; q0 < nq; q0 += W) {
        FK_VEC gd[V], gd2[V], gg[V];
        for (int v = 0; v < V; ++v) gd[v] = gd2[v] = gg[v] = (FK_VEC){0};
        ptrdiff_t i = 0;
        if (all_stations) {
            for (; i + 1 < n; i += 2) {
                const double *g = terms + sta[i] * FK_LOCATE_TILE + q0;
                const double *g2 = terms + sta[i + 1] * FK_LOCATE_TILE + q0;
                const FK_VEC di = FK_SET1(d[i]), di2 = FK_SET1(d[i + 1]);
                for (int v = 0; v < V; ++v) {
                    FK_VEC gv, gv2;
                    memcpy(&gv, g + v * FK_VW, sizeof gv);
                    memcpy(&gv2, g2 + v * FK_VW, sizeof gv2);
                    gd[v] = FK_MULADD(gv, di, gd[v]);
                    gd2[v] = FK_MULADD(gv2, di2, gd2[v]);
                }
            }
            memcpy(gg, gg_all + q0, sizeof gg);
        } else {
            for (; i + 1 < n; i += 2) {
                const double *g = terms + sta[i] * FK_LOCATE_TILE + q0;
                const double *g2 = terms + sta[i + 1] * FK_LOCATE_TILE + q0;
                const FK_VEC di = FK_SET1(d[i]), di2 = FK_SET1(d[i + 1]);
                for (int v = 0; v < V; ++v) {
                    FK_VEC gv, gv2;
                    memcpy(&gv, g + v * FK_VW, sizeof gv);
                    memcpy(&gv2, g2 + v * FK_VW, sizeof gv2);
                    gd[v] = FK_MULADD(gv, di, gd[v]);
                    gd2[v] = FK_MULADD(gv2, di2, gd2[v]);
                    gg[v] = FK_MULADD(gv, gv, gg[v]);
                    gg[v] = FK_MULADD(gv2, gv2, gg[v]);
                }
            }
        }
        if (i < n) {  /* an odd station out */
            const double *g = terms + sta[i] * FK_LOCATE_TILE + q0;
            const FK_VEC di = FK_SET1(d[i]);
            for (int v = 0; v < V; ++v) {
                FK_VEC gv;
                memcpy(&gv, g + v * FK_VW, sizeof gv);
                gd[v] = FK_MULADD(gv, di, gd[v]);
                if (!all_stations) gg[v] = FK_MULADD(gv, gv, gg[v]);
            }
        }
        for (int v = 0; v < V; ++v) gd[v] += gd2[v];
        memcpy(gd_out + q0, gd, sizeof gd);
        memcpy(gg_out + q0, gg, sizeof gg);
    }
}

/* pass[q] = 1 unless the event's bound L is above U at its minimiser
 * m = gd / (gg (1-c)), whatever A: L(m) > U is (U - dd1) * den < -gd**2 with
 * den = gg (1-c), dd1 = dd (1-c) - tiny.  Clamping m to [a[0], a[-1]] could only
 * raise the bound, so this skips fewer positions than it might, never more;
 * the exact step clamps.  A non-finite value anywhere passes the position.
 * Returns the number of positions passed. */
FK_ISA_ATTR
static ptrdiff_t FK_SCAT(filter, FK_ISA)(const double *FK_RESTRICT gd,
                                         const double *FK_RESTRICT gg, ptrdiff_t nq,
                                         double dd1, double U, double c1,
                                         unsigned char *FK_RESTRICT pass)
{
    const double lhs = dd1 - U;
    ptrdiff_t count = 0;
    for (ptrdiff_t q = 0; q < nq; ++q) {
        /* where every term is 0 (far away, or underflow) v is 0: passed, and the
         * exact step, which knows that L is the constant dd1 there, decides */
        const double v = lhs * (gg[q] * c1) - gd[q] * gd[q];
        const int skip = (v > 0.0) & (v - v == 0.0);
        pass[q] = (unsigned char)!skip;
        count += !skip;
    }
    return count;
}

/* gd of FK_GROUP events that all stations recorded (rows of d, S values each,
 * in station order) at once: each load of a station term feeds every event. */
FK_ISA_ATTR
static void FK_SCAT(sums_group, FK_ISA)(const double *FK_RESTRICT terms, ptrdiff_t n_sta,
                                        const double *const *d, ptrdiff_t nq,
                                        double *const *gd_out)
{
    enum { W = 2 * FK_VW };   /* 2 vectors of positions x 4 events: 8 sums */
    const double *d0 = d[0], *d1 = d[1], *d2 = d[2], *d3 = d[3];
    for (ptrdiff_t q0 = 0; q0 < nq; q0 += W) {
        FK_VEC a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0}, c0 = {0}, c1 = {0}, e0 = {0}, e1 = {0};
        const double *g = terms + q0;
        for (ptrdiff_t s = 0; s < n_sta; ++s, g += FK_LOCATE_TILE) {
            FK_VEC g0, g1;
            memcpy(&g0, g, sizeof g0);
            memcpy(&g1, g + FK_VW, sizeof g1);
            FK_VEC x = FK_SET1(d0[s]);
            a0 = FK_MULADD(g0, x, a0);
            a1 = FK_MULADD(g1, x, a1);
            x = FK_SET1(d1[s]);
            b0 = FK_MULADD(g0, x, b0);
            b1 = FK_MULADD(g1, x, b1);
            x = FK_SET1(d2[s]);
            c0 = FK_MULADD(g0, x, c0);
            c1 = FK_MULADD(g1, x, c1);
            x = FK_SET1(d3[s]);
            e0 = FK_MULADD(g0, x, e0);
            e1 = FK_MULADD(g1, x, e1);
        }
        memcpy(gd_out[0] + q0, &a0, sizeof a0);
        memcpy(gd_out[0] + q0 + FK_VW, &a1, sizeof a1);
        memcpy(gd_out[1] + q0, &b0, sizeof b0);
        memcpy(gd_out[1] + q0 + FK_VW, &b1, sizeof b1);
        memcpy(gd_out[2] + q0, &c0, sizeof c0);
        memcpy(gd_out[2] + q0 + FK_VW, &c1, sizeof c1);
        memcpy(gd_out[3] + q0, &e0, sizeof e0);
        memcpy(gd_out[3] + q0 + FK_VW, &e1, sizeof e1);
    }
}

#undef FK_SCAT
#undef FK_SCAT_
