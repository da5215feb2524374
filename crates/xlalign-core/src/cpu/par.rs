//! Work splitting for the CPU kernels: rayon with the `parallel` feature, plain loops
//! without it (the wasm build). Work is always split into pieces that write disjoint
//! parts of the output, so results do not depend on the number of threads.

/// Threads the current pool will use (1 without the `parallel` feature).
pub(crate) fn threads() -> usize {
    #[cfg(feature = "parallel")]
    {
        rayon::current_num_threads()
    }
    #[cfg(not(feature = "parallel"))]
    {
        1
    }
}

/// Rows per piece when splitting `rows` rows of output: at most 64 (so a piece's
/// activations stay in cache), and small enough to give each thread a few pieces.
/// Always a multiple of `align`.
pub(crate) fn token_chunk(rows: usize, align: usize) -> usize {
    const MAX: usize = 64;
    let t = threads();
    let per = if t <= 1 {
        MAX
    } else {
        rows.div_ceil(t * 3).clamp(1, MAX)
    };
    per.div_ceil(align) * align
}

/// Calls `f(i, piece)` for each `chunk_len`-long piece of `data` (the last may be shorter).
pub(crate) fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let chunk_len = chunk_len.max(1);
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        if data.len() > chunk_len {
            data.par_chunks_mut(chunk_len)
                .enumerate()
                .for_each(|(i, c)| f(i, c));
            return;
        }
    }
    data.chunks_mut(chunk_len)
        .enumerate()
        .for_each(|(i, c)| f(i, c));
}

/// `(0..n).map(f)` collected in order, in parallel when available.
pub(crate) fn map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        if n > 1 {
            return (0..n).into_par_iter().map(f).collect();
        }
    }
    (0..n).map(f).collect()
}

/// [`for_each_chunk_mut`] over three buffers holding `width_*` values per row, cut at the
/// same rows (`chunk_rows` per piece); `f` gets the piece's first row.
pub(crate) fn for_each_rows3<A: Send, B: Send, C: Send>(
    chunk_rows: usize,
    (a, wa): (&mut [A], usize),
    (b, wb): (&mut [B], usize),
    (c, wc): (&mut [C], usize),
    f: impl Fn(usize, &mut [A], &mut [B], &mut [C]) + Sync + Send,
) {
    let n = chunk_rows.max(1);
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        if a.len() > n * wa {
            a.par_chunks_mut(n * wa)
                .zip(b.par_chunks_mut(n * wb))
                .zip(c.par_chunks_mut(n * wc))
                .enumerate()
                .for_each(|(i, ((a, b), c))| f(i * n, a, b, c));
            return;
        }
    }
    a.chunks_mut(n * wa)
        .zip(b.chunks_mut(n * wb))
        .zip(c.chunks_mut(n * wc))
        .enumerate()
        .for_each(|(i, ((a, b), c))| f(i * n, a, b, c));
}
