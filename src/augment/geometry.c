/* Host geometry for augmentation: 3×3 matrices from angles, shears, scales and from 3 or 4 point pairs. */
#include <math.h>
#include <string.h>

#include "frugal/augment.h"

void fr_geom_identity(double m[9])
{
    static const double id[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    memcpy(m, id, sizeof id);
}

void fr_geom_mul(const double a[9], const double b[9], double out[9])
{
    double r[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            r[i * 3 + j] = a[i * 3 + 0] * b[0 * 3 + j] + a[i * 3 + 1] * b[1 * 3 + j] + a[i * 3 + 2] * b[2 * 3 + j];
    memcpy(out, r, sizeof r);
}

enum fr_status fr_geom_invert(const double m[9], double inv[9])
{
    double c00 = m[4] * m[8] - m[5] * m[7], c01 = m[5] * m[6] - m[3] * m[8], c02 = m[3] * m[7] - m[4] * m[6];
    double det = m[0] * c00 + m[1] * c01 + m[2] * c02;
    /* relative test against Hadamard's bound |det| <= |row0|·|row1|·|row2|: the matrix maps the plane onto (nearly)
     * a line. Large translations or shears alone never make a matrix singular. */
    double bound = 1;
    for (int i = 0; i < 3; i++)
        bound *= sqrt(m[3 * i] * m[3 * i] + m[3 * i + 1] * m[3 * i + 1] + m[3 * i + 2] * m[3 * i + 2]);
    if (!(fabs(det) > 1e-12 * bound) || !isfinite(det) || !isfinite(bound))
        return fr_error(FR_STATUS_NUMERIC,
                        "augment: the transform matrix is singular (it maps the image onto a line: determinant %g, "
                        "%.3g of its largest possible value)",
                        det, bound > 0 && isfinite(bound) ? fabs(det) / bound : 0.0);
    double r[9] = {c00,
                   m[2] * m[7] - m[1] * m[8],
                   m[1] * m[5] - m[2] * m[4],
                   c01,
                   m[0] * m[8] - m[2] * m[6],
                   m[2] * m[3] - m[0] * m[5],
                   c02,
                   m[1] * m[6] - m[0] * m[7],
                   m[0] * m[4] - m[1] * m[3]};
    for (int i = 0; i < 9; i++)
        inv[i] = r[i] / det;
    if (inv[8] != 0 && m[6] == 0 && m[7] == 0) { /* keep affine matrices exactly affine */
        inv[6] = inv[7] = 0;
        inv[8] = 1;
    }
    return FR_STATUS_OK;
}

void fr_geom_rotate(double m[9], double deg, double cx, double cy)
{
    double a = deg * (M_PI / 180.0);
    double c = cos(a), s = sin(a);
    /* exact values at multiples of 90° keep rotated pixel grids exact */
    if (fmod(deg, 90.0) == 0) {
        long q = ((long)(deg / 90.0) % 4 + 4) % 4;
        c = (q == 0) ? 1 : (q == 2) ? -1 : 0;
        s = (q == 1) ? 1 : (q == 3) ? -1 : 0;
    }
    /* y points down, so a counter-clockwise turn on screen is this matrix (cv2.getRotationMatrix2D) */
    double r[9] = {c, s, (1 - c) * cx - s * cy, -s, c, s * cx + (1 - c) * cy, 0, 0, 1};
    memcpy(m, r, sizeof r);
}

void fr_geom_shear(double m[9], double shx, double shy, double cx, double cy)
{
    double r[9] = {1, shx, -shx * cy, shy, 1, -shy * cx, 0, 0, 1};
    memcpy(m, r, sizeof r);
}

void fr_geom_translate(double m[9], double tx, double ty)
{
    double r[9] = {1, 0, tx, 0, 1, ty, 0, 0, 1};
    memcpy(m, r, sizeof r);
}

void fr_geom_scale(double m[9], double sx, double sy, double cx, double cy)
{
    double r[9] = {sx, 0, cx - sx * cx, 0, sy, cy - sy * cy, 0, 0, 1};
    memcpy(m, r, sizeof r);
}

void fr_geom_apply(const double m[9], double x, double y, double *ox, double *oy)
{
    double w = m[6] * x + m[7] * y + m[8];
    *ox = (m[0] * x + m[1] * y + m[2]) / w;
    *oy = (m[3] * x + m[4] * y + m[5]) / w;
}

/* twice the signed area of the triangle (a, b, c) */
static double tri2(const double *p, int a, int b, int c)
{
    return (p[2 * b] - p[2 * a]) * (p[2 * c + 1] - p[2 * a + 1]) - (p[2 * c] - p[2 * a]) * (p[2 * b + 1] - p[2 * a + 1]);
}

/* size of the point set, for relative degeneracy tests */
static double extent(const double *p, int n)
{
    double e = 0;
    for (int i = 1; i < n; i++)
        e = fmax(e, fmax(fabs(p[2 * i] - p[0]), fabs(p[2 * i + 1] - p[1])));
    return e;
}

static int collinear3(const double *p, int a, int b, int c, double ext)
{
    return !(fabs(tri2(p, a, b, c)) > 1e-9 * ext * ext);
}

enum fr_status fr_geom_affine_from_points(const double src[6], const double dst[6], double m[9])
{
    for (int i = 0; i < 6; i++)
        if (!isfinite(src[i]) || !isfinite(dst[i]))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: affine from points: non-finite coordinate");
    if (collinear3(src, 0, 1, 2, extent(src, 3)))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: affine from points: the 3 source points are collinear");
    if (collinear3(dst, 0, 1, 2, extent(dst, 3)))
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "augment: affine from points: the 3 destination points are collinear");
    /* M = D · S^-1 with S, D the points as homogeneous columns */
    double s[9] = {src[0], src[2], src[4], src[1], src[3], src[5], 1, 1, 1};
    double d[9] = {dst[0], dst[2], dst[4], dst[1], dst[3], dst[5], 1, 1, 1};
    double si[9];
    enum fr_status st = fr_geom_invert(s, si);
    if (st != FR_STATUS_OK)
        return st;
    fr_geom_mul(d, si, m);
    m[6] = m[7] = 0;
    m[8] = 1;
    return FR_STATUS_OK;
}

enum fr_status fr_geom_perspective_from_points(const double src[8], const double dst[8], double m[9])
{
    for (int i = 0; i < 8; i++)
        if (!isfinite(src[i]) || !isfinite(dst[i]))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: perspective from points: non-finite coordinate");
    static const int tri[4][3] = {{0, 1, 2}, {0, 1, 3}, {0, 2, 3}, {1, 2, 3}};
    double es = extent(src, 4), ed = extent(dst, 4);
    for (int t = 0; t < 4; t++) {
        if (collinear3(src, tri[t][0], tri[t][1], tri[t][2], es))
            return fr_error(FR_STATUS_INVALID_ARGUMENT,
                            "augment: perspective from points: source points %d, %d, %d are collinear", tri[t][0],
                            tri[t][1], tri[t][2]);
        if (collinear3(dst, tri[t][0], tri[t][1], tri[t][2], ed))
            return fr_error(FR_STATUS_INVALID_ARGUMENT,
                            "augment: perspective from points: destination points %d, %d, %d are collinear",
                            tri[t][0], tri[t][1], tri[t][2]);
    }
    /* unknowns m0..m7 (m8 = 1): x' (m6 x + m7 y + 1) = m0 x + m1 y + m2, likewise for y' */
    double a[8][9];
    memset(a, 0, sizeof a);
    for (int i = 0; i < 4; i++) {
        double x = src[2 * i], y = src[2 * i + 1], u = dst[2 * i], v = dst[2 * i + 1];
        double *r0 = a[i], *r1 = a[i + 4];
        r0[0] = x, r0[1] = y, r0[2] = 1, r0[6] = -x * u, r0[7] = -y * u, r0[8] = u;
        r1[3] = x, r1[4] = y, r1[5] = 1, r1[6] = -x * v, r1[7] = -y * v, r1[8] = v;
    }
    /* Gaussian elimination with partial pivoting on the augmented 8×9 system */
    for (int col = 0; col < 8; col++) {
        int piv = col;
        for (int r = col + 1; r < 8; r++)
            if (fabs(a[r][col]) > fabs(a[piv][col]))
                piv = r;
        if (!(fabs(a[piv][col]) > 1e-12))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: perspective from points: degenerate point set");
        if (piv != col)
            for (int j = 0; j < 9; j++) {
                double t = a[col][j];
                a[col][j] = a[piv][j];
                a[piv][j] = t;
            }
        for (int r = 0; r < 8; r++) {
            if (r == col || a[r][col] == 0)
                continue;
            double f = a[r][col] / a[col][col];
            for (int j = col; j < 9; j++)
                a[r][j] -= f * a[col][j];
        }
    }
    for (int i = 0; i < 8; i++)
        m[i] = a[i][8] / a[i][i];
    m[8] = 1;
    for (int i = 0; i < 9; i++)
        if (!isfinite(m[i]))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: perspective from points: degenerate point set");
    return FR_STATUS_OK;
}
