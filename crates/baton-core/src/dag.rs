//! Rules of dependency graphs: cycles and order.
//!
//! Nodes are indices `0..n`; edges say "node depends on these nodes". Both
//! functions are iterative (no recursion), linear in nodes plus edges, so a
//! 10,000-task plan is checked in microseconds.

/// A cycle, as the list of nodes on it (the first repeated at the end), or `None`.
pub fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    let mut parent = vec![usize::MAX; deps.len()];
    for root in 0..deps.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // Each frame is a node and how many of its edges were followed.
        let mut stack = vec![(root, 0usize)];
        mark[root] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = deps[node].get(*next) {
                *next += 1;
                match mark[dep] {
                    Mark::New => {
                        mark[dep] = Mark::OnPath;
                        parent[dep] = node;
                        stack.push((dep, 0));
                    }
                    Mark::OnPath => {
                        let mut cycle = vec![dep];
                        let mut at = node;
                        while at != dep {
                            cycle.push(at);
                            at = parent[at];
                        }
                        cycle.push(dep);
                        cycle.reverse();
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// The nodes in an order where every node comes after its dependencies, or the
/// cycle that makes such an order impossible.
pub fn topological_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (node, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(node);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(node) = ready.pop() {
        order.push(node);
        for &dep in &dependents[node] {
            remaining[dep] -= 1;
            if remaining[dep] == 0 {
                ready.push(dep);
            }
        }
    }
    if order.len() == n { Ok(order) } else { Err(find_cycle(deps).unwrap_or_default()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond_has_no_cycle() {
        let deps = vec![vec![], vec![0], vec![0], vec![1, 2]];
        assert_eq!(find_cycle(&deps), None);
        let order = topological_order(&deps).unwrap();
        let pos = |n| order.iter().position(|&x| x == n).unwrap();
        assert!(pos(0) < pos(1) && pos(0) < pos(2) && pos(1) < pos(3) && pos(2) < pos(3));
    }

    #[test]
    fn cycles_are_named() {
        let deps = vec![vec![2], vec![0], vec![1]];
        let cycle = find_cycle(&deps).unwrap();
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4);
        assert_eq!(find_cycle(&[vec![0]]), Some(vec![0, 0]));
        assert!(topological_order(&deps).is_err());
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let deps: Vec<Vec<usize>> = (0..200_000).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect();
        assert_eq!(find_cycle(&deps), None);
        assert_eq!(topological_order(&deps).unwrap().len(), 200_000);
    }
}
