//! Dense `f64` linear algebra for the Frechet distance and KID: Gram products, pivoted Cholesky, symmetric
//! eigenvalues (Householder tridiagonalisation + implicit QL), and the trace of the square root of a product of two
//! covariance matrices. Row-major storage throughout; no external BLAS.

use crate::metrics::error::MetricError;

/// `A B^T` for row-major `A` (`a_rows x k`) and `B` (`b_rows x k`): a row-major `a_rows x b_rows` matrix.
pub fn gram(a: &[f64], a_rows: usize, b: &[f64], b_rows: usize, k: usize) -> Vec<f64> {
    let mut out = vec![0.0; a_rows * b_rows];
    gram_into(a, a_rows, b, b_rows, k, false, &mut out);
    out
}

/// `A A^T` for row-major `A` (`rows x k`), computing only the upper blocks and mirroring them.
pub fn gram_symmetric(a: &[f64], rows: usize, k: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * rows];
    gram_into(a, rows, a, rows, k, true, &mut out);
    for i in 0..rows {
        for j in 0..i {
            out[i * rows + j] = out[j * rows + i];
        }
    }
    out
}

/// Tiles of 2 rows of A by 4 rows of B; within a tile, two independent lanes over k let the compiler use SIMD.
fn gram_into(a: &[f64], a_rows: usize, b: &[f64], b_rows: usize, k: usize, upper_only: bool, out: &mut [f64]) {
    fn row(m: &[f64], i: usize, k: usize) -> &[f64] {
        m.get(i * k..(i + 1) * k).unwrap_or(&[])
    }
    let mut i = 0;
    while i < a_rows {
        let i_count = (a_rows - i).min(2);
        let mut j = if upper_only { i - i % 4 } else { 0 };
        while j < b_rows {
            let j_count = (b_rows - j).min(4);
            if i_count == 2 && j_count == 4 {
                let tile = dot_tile_2x4(
                    [row(a, i, k), row(a, i + 1, k)],
                    [row(b, j, k), row(b, j + 1, k), row(b, j + 2, k), row(b, j + 3, k)],
                );
                for (p, tile_row) in tile.iter().enumerate() {
                    out[(i + p) * b_rows + j..(i + p) * b_rows + j + 4].copy_from_slice(tile_row);
                }
            } else {
                for p in 0..i_count {
                    for q in 0..j_count {
                        out[(i + p) * b_rows + j + q] = dot(row(a, i + p, k), row(b, j + q, k));
                    }
                }
            }
            j += 4;
        }
        i += 2;
    }
}

/// Dot product with two accumulators.
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [0.0f64; 2];
    let mut xc = x.chunks_exact(2);
    let mut yc = y.chunks_exact(2);
    for (xs, ys) in xc.by_ref().zip(yc.by_ref()) {
        acc[0] += xs[0] * ys[0];
        acc[1] += xs[1] * ys[1];
    }
    let tail: f64 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    acc[0] + acc[1] + tail
}

fn dot_tile_2x4(a: [&[f64]; 2], b: [&[f64]; 4]) -> [[f64; 4]; 2] {
    let n = a.iter().chain(b.iter()).map(|s| s.len()).min().unwrap_or(0);
    let (a0, a1) = (&a[0][..n], &a[1][..n]);
    let (b0, b1, b2, b3) = (&b[0][..n], &b[1][..n], &b[2][..n], &b[3][..n]);
    let mut acc = [[[0.0f64; 2]; 4]; 2];
    let pairs = n / 2;
    for c in 0..pairs {
        let i = 2 * c;
        let av = [[a0[i], a0[i + 1]], [a1[i], a1[i + 1]]];
        let bv = [[b0[i], b0[i + 1]], [b1[i], b1[i + 1]], [b2[i], b2[i + 1]], [b3[i], b3[i + 1]]];
        for p in 0..2 {
            for q in 0..4 {
                for lane in 0..2 {
                    acc[p][q][lane] += av[p][lane] * bv[q][lane];
                }
            }
        }
    }
    let mut out = [[0.0f64; 4]; 2];
    let tail = pairs * 2;
    for p in 0..2 {
        let ap = if p == 0 { a0 } else { a1 };
        for q in 0..4 {
            let bq = [b0, b1, b2, b3][q];
            let rest: f64 = ap[tail..].iter().zip(&bq[tail..]).map(|(x, y)| x * y).sum();
            out[p][q] = acc[p][q][0] + acc[p][q][1] + rest;
        }
    }
    out
}

/// Diagonal-pivoted Cholesky of a symmetric positive semi-definite `n x n` matrix: `P^T S P = L L^T` with `L`
/// lower trapezoidal `n x rank`. Returns the permutation (position -> original index) and `L^T` as `rank` rows of
/// length `n` (in permuted order). Stops when the largest remaining pivot is below `n * eps * max(diag)` (LAPACK
/// `dpstrf`'s default), which is how a rank-deficient covariance (N <= D) is handled.
pub fn pivoted_cholesky(s: &[f64], n: usize) -> (Vec<usize>, Vec<Vec<f64>>) {
    let mut work = s.to_vec();
    let mut perm: Vec<usize> = (0..n).collect();
    let max_diag = (0..n).map(|i| work[i * n + i]).fold(0.0f64, f64::max);
    let tolerance = n as f64 * f64::EPSILON * max_diag;
    let mut lt: Vec<Vec<f64>> = Vec::new();
    for k in 0..n {
        let mut pivot = k;
        for i in k + 1..n {
            if work[i * n + i] > work[pivot * n + pivot] {
                pivot = i;
            }
        }
        let pivot_value = work[pivot * n + pivot];
        // `!(a > b)` also stops on NaN.
        if pivot_value.is_nan() || pivot_value <= tolerance {
            break;
        }
        if pivot != k {
            for c in 0..n {
                work.swap(k * n + c, pivot * n + c);
            }
            for r in 0..n {
                work.swap(r * n + k, r * n + pivot);
            }
            perm.swap(k, pivot);
            for done in &mut lt {
                done.swap(k, pivot);
            }
        }
        let l_kk = pivot_value.sqrt();
        let mut column = vec![0.0f64; n];
        column[k] = l_kk;
        for i in k + 1..n {
            column[i] = work[i * n + k] / l_kk;
        }
        for i in k + 1..n {
            let ci = column[i];
            if ci != 0.0 {
                let row = &mut work[i * n + k + 1..(i + 1) * n];
                for (x, cj) in row.iter_mut().zip(&column[k + 1..]) {
                    *x -= ci * cj;
                }
            }
        }
        lt.push(column);
    }
    (perm, lt)
}

/// Eigenvalues of a symmetric `n x n` matrix (row-major; only its symmetric part matters), ascending.
pub fn symmetric_eigenvalues(mut a: Vec<f64>, n: usize) -> Result<Vec<f64>, MetricError> {
    if a.len() != n * n {
        return Err(MetricError::LengthMismatch {
            what: "symmetric matrix values vs n*n",
            left: a.len(),
            right: n * n,
        });
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let (diagonal, off_diagonal) = tridiagonalise(&mut a, n);
    let mut values = tridiagonal_ql(diagonal, off_diagonal)?;
    values.sort_by(f64::total_cmp);
    Ok(values)
}

/// Householder reduction to tridiagonal form (values only; LAPACK `dsytd2` order). Returns the diagonal and the
/// `n - 1` off-diagonal entries.
fn tridiagonalise(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut diagonal = vec![0.0f64; n];
    let mut off = vec![0.0f64; n.saturating_sub(1)];
    let mut v = vec![0.0f64; n];
    let mut p = vec![0.0f64; n];
    for k in 0..n.saturating_sub(1) {
        diagonal[k] = a[k * n + k];
        // x = A[k+1.., k] = A[k, k+1..] by symmetry (the row is contiguous).
        let m = n - k - 1;
        let x = &a[k * n + k + 1..(k + 1) * n];
        let tail_norm_sq: f64 = x.iter().skip(1).map(|t| t * t).sum();
        if tail_norm_sq == 0.0 {
            off[k] = x[0];
            continue;
        }
        let norm = (x[0] * x[0] + tail_norm_sq).sqrt();
        let alpha = if x[0] > 0.0 { -norm } else { norm };
        let v = &mut v[..m];
        v.copy_from_slice(x);
        v[0] -= alpha;
        let v_norm_sq = v[0] * v[0] + tail_norm_sq;
        let beta = 2.0 / v_norm_sq;
        off[k] = alpha;
        // p = beta A22 v; w = p - (beta/2)(p.v) v; A22 -= v w^T + w v^T.
        let p = &mut p[..m];
        for (i, pi) in p.iter_mut().enumerate() {
            let row_start = (k + 1 + i) * n + k + 1;
            *pi = beta * dot(&a[row_start..row_start + m], v);
        }
        let half_beta_pv = 0.5 * beta * dot(p, v);
        for (pi, vi) in p.iter_mut().zip(v.iter()) {
            *pi -= half_beta_pv * vi;
        }
        let w = p;
        for i in 0..m {
            let row_start = (k + 1 + i) * n + k + 1;
            let (vi, wi) = (v[i], w[i]);
            for ((x, vj), wj) in a[row_start..row_start + m].iter_mut().zip(v.iter()).zip(w.iter()) {
                *x -= vi * wj + wi * vj;
            }
        }
    }
    diagonal[n - 1] = a[(n - 1) * n + n - 1];
    (diagonal, off)
}

/// Eigenvalues of a symmetric tridiagonal matrix by the implicit QL method with Wilkinson-type shifts
/// (EISPACK `tql1`, Numerical Recipes `tqli` without vectors).
fn tridiagonal_ql(mut d: Vec<f64>, off: Vec<f64>) -> Result<Vec<f64>, MetricError> {
    let n = d.len();
    let mut e = off;
    e.push(0.0);
    for l in 0..n {
        let mut iterations = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iterations += 1;
            if iterations > 60 {
                return Err(MetricError::NoConvergence {
                    what: "tridiagonal QL eigenvalue iteration",
                    reason: format!("eigenvalue {l} needed more than 60 iterations"),
                });
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut underflow = false;
            let mut i = m;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    // Recover from underflow: deflate and restart this eigenvalue.
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if underflow {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    Ok(d)
}

/// `Tr((S1 S2)^{1/2})` for symmetric positive semi-definite `S1`, `S2` (`n x n`, row-major).
///
/// With `P^T S2 P = L L^T` (pivoted Cholesky), the eigenvalues of `S1 S2` are those of the symmetric PSD matrix
/// `L^T P^T S1 P L` (plus zeros), so the trace is the sum of the square roots of its eigenvalues. Tiny negative
/// eigenvalues from rounding are clamped to zero. Returns the trace and the most negative eigenvalue seen.
pub fn trace_sqrt_product(s1: &[f64], s2: &[f64], n: usize) -> Result<(f64, f64), MetricError> {
    if s1.len() != n * n || s2.len() != n * n {
        return Err(MetricError::LengthMismatch {
            what: "covariance values vs D*D",
            left: s1.len().max(s2.len()),
            right: n * n,
        });
    }
    let (perm, lt) = pivoted_cholesky(s2, n);
    let rank = lt.len();
    if rank == 0 {
        return Ok((0.0, 0.0));
    }
    // B = P^T S1 P.
    let mut permuted = vec![0.0f64; n * n];
    for (i, &pi) in perm.iter().enumerate() {
        for (j, &pj) in perm.iter().enumerate() {
            permuted[i * n + j] = s1[pi * n + pj];
        }
    }
    // T = L^T B (rank x n); row a of L^T is zero before position a.
    let mut t = vec![0.0f64; rank * n];
    for (a, lt_row) in lt.iter().enumerate() {
        let t_row = &mut t[a * n..(a + 1) * n];
        for (i, &l) in lt_row.iter().enumerate().skip(a) {
            if l != 0.0 {
                for (x, bij) in t_row.iter_mut().zip(&permuted[i * n..(i + 1) * n]) {
                    *x += l * bij;
                }
            }
        }
    }
    let lt_flat: Vec<f64> = lt.concat();
    let mut m = gram(&t, rank, &lt_flat, rank, n);
    for i in 0..rank {
        for j in 0..i {
            let mean = 0.5 * (m[i * rank + j] + m[j * rank + i]);
            m[i * rank + j] = mean;
            m[j * rank + i] = mean;
        }
    }
    let eigenvalues = symmetric_eigenvalues(m, rank)?;
    let most_negative = eigenvalues.iter().copied().fold(0.0f64, f64::min);
    let trace = eigenvalues.iter().map(|&v| v.max(0.0).sqrt()).sum();
    Ok((trace, most_negative))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::rng::SeededRng;

    fn random_matrix(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
        let mut rng = SeededRng::new(seed);
        (0..rows * cols).map(|_| rng.unit_f64() - 0.5).collect()
    }

    #[test]
    fn gram_matches_naive_products_on_odd_shapes() {
        let (ar, br, k) = (7, 5, 13);
        let a = random_matrix(ar, k, 1);
        let b = random_matrix(br, k, 2);
        let g = gram(&a, ar, &b, br, k);
        for i in 0..ar {
            for j in 0..br {
                let naive: f64 = (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum();
                assert!((g[i * br + j] - naive).abs() < 1e-12);
            }
        }
        let s = gram_symmetric(&a, ar, k);
        for i in 0..ar {
            for j in 0..ar {
                let naive: f64 = (0..k).map(|t| a[i * k + t] * a[j * k + t]).sum();
                assert!((s[i * ar + j] - naive).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn eigenvalues_of_known_matrices() {
        // Tridiagonal Toeplitz (2, -1): eigenvalues 2 - 2 cos(k pi / (n + 1)).
        let n = 9;
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            a[i * n + i] = 2.0;
            if i + 1 < n {
                a[i * n + i + 1] = -1.0;
                a[(i + 1) * n + i] = -1.0;
            }
        }
        let values = symmetric_eigenvalues(a, n).unwrap();
        let mut expected: Vec<f64> =
            (1..=n).map(|k| 2.0 - 2.0 * (k as f64 * std::f64::consts::PI / (n as f64 + 1.0)).cos()).collect();
        expected.sort_by(f64::total_cmp);
        for (v, e) in values.iter().zip(&expected) {
            assert!((v - e).abs() < 1e-12, "{v} vs {e}");
        }
        // A dense random symmetric matrix: trace and Frobenius norm are preserved.
        let n = 20;
        let r = random_matrix(n, n, 3);
        let mut s = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                s[i * n + j] = r[i * n + j] + r[j * n + i];
            }
        }
        let values = symmetric_eigenvalues(s.clone(), n).unwrap();
        let trace: f64 = (0..n).map(|i| s[i * n + i]).sum();
        let frob: f64 = s.iter().map(|v| v * v).sum();
        assert!((values.iter().sum::<f64>() - trace).abs() < 1e-10);
        assert!((values.iter().map(|v| v * v).sum::<f64>() - frob).abs() < 1e-9);
    }

    #[test]
    fn trace_sqrt_of_commuting_diagonals_and_rank_deficient() {
        let n = 4;
        let mut s1 = vec![0.0; n * n];
        let mut s2 = vec![0.0; n * n];
        for (i, (a, b)) in [(1.0, 4.0), (9.0, 1.0), (2.0, 8.0), (3.0, 0.0)].iter().enumerate() {
            s1[i * n + i] = *a;
            s2[i * n + i] = *b;
        }
        let (trace, _) = trace_sqrt_product(&s1, &s2, n).unwrap();
        assert!((trace - (2.0 + 3.0 + 4.0 + 0.0)).abs() < 1e-12, "{trace}");
        let zero = vec![0.0; n * n];
        assert_eq!(trace_sqrt_product(&s1, &zero, n).unwrap().0, 0.0);
        assert!(trace_sqrt_product(&s1, &zero, 3).is_err());
    }
}
