//! What the update and the renderer both need to know about the screen: the theme and the
//! step search. `app` never imports `ui`'s drawing; `ui` draws from here.

pub mod layout;
pub mod output;
pub mod text;
pub mod theme;

use super::App;

/// Steps whose title, id or SQL contains `q` (case-insensitive): `(index, "id — title")`.
/// The step named exactly comes first, then id matches, then titles, then SQL (a statement
/// that mentions another step's id never hides that step).
pub fn find_matches(app: &App, q: &str) -> Vec<(usize, String)> {
    let q = q.trim().to_lowercase();
    let Some(run) = &app.run else { return vec![] };
    if q.is_empty() {
        return vec![];
    }
    let mut found: Vec<(u8, usize, String)> = run
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let (_, st) = run.step(i)?;
            let id = st.id.to_lowercase();
            let rank = if id == q {
                0
            } else if id.contains(&q) {
                1
            } else if st.title.to_lowercase().contains(&q) {
                2
            } else if st
                .statement()
                .is_some_and(|s| s.2.to_lowercase().contains(&q))
            {
                3
            } else {
                return None;
            };
            Some((rank, i, format!("{} — {}", row.id, st.title)))
        })
        .collect();
    found.sort_by_key(|(rank, i, _)| (*rank, *i));
    found.into_iter().map(|(_, i, s)| (i, s)).collect()
}
