//! Cutting a stream into blocks of consecutive items for the corpus scores, which compare
//! each pair with the rest of its block: the CLI's `score` and `mexa` and the Python
//! package's `score` cut their input this one way.

/// Calls `f` on consecutive blocks of `items`, in order, each of `size` items except the
/// last two, which share the rest evenly when it is more than `size`: so every block holds
/// between half and all of `size` items (unless the whole input is smaller), and no score
/// comes from a tail of a handful of pairs. At most `2 × size` items are held at a time.
pub fn for_each_block<T, E>(
    items: impl Iterator<Item = Result<T, E>>,
    size: usize,
    mut f: impl FnMut(Vec<T>) -> Result<(), E>,
) -> Result<(), E> {
    let size = size.max(1);
    let mut pending = Vec::with_capacity(2 * size);
    for item in items {
        pending.push(item?);
        if pending.len() == 2 * size {
            let rest = pending.split_off(size);
            f(std::mem::replace(&mut pending, rest))?;
        }
    }
    if pending.len() > size {
        let rest = pending.split_off(pending.len() / 2);
        f(pending)?;
        f(rest)?;
    } else if !pending.is_empty() {
        f(pending)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(n: usize, size: usize) -> Vec<usize> {
        let mut got = Vec::new();
        let mut next = 0;
        for_each_block((0..n).map(Ok::<usize, ()>), size, |b| {
            assert_eq!(b[0], next, "in order");
            next += b.len();
            got.push(b.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(next, n);
        got
    }

    #[test]
    fn the_tail_is_shared_by_the_last_two_blocks() {
        assert_eq!(sizes(0, 4), Vec::<usize>::new());
        assert_eq!(sizes(3, 4), [3]);
        assert_eq!(sizes(4, 4), [4]);
        assert_eq!(sizes(5, 4), [2, 3]);
        assert_eq!(sizes(8, 4), [4, 4]);
        assert_eq!(sizes(9, 4), [4, 2, 3]);
        assert_eq!(sizes(12, 4), [4, 4, 4]);
        assert_eq!(sizes(1016, 1000), [508, 508]);
        assert_eq!(sizes(2001, 1000), [1000, 500, 501]);
    }
}
