//! Colours and text styles, from `assets/themes/*.toml`; `NO_COLOR` strips every colour.

use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

pub const DARK: &str = include_str!("../../../assets/themes/dark.toml");
pub const HIGH_CONTRAST: &str = include_str!("../../../assets/themes/high-contrast.toml");

/// Named styles the view uses; nothing else in `ui` picks colours.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub dim: Style,
    pub accent: Style,
    pub title: Style,
    pub border: Style,
    pub border_focus: Style,
    pub selected: Style,
    pub header: Style,
    pub pass: Style,
    pub fail: Style,
    pub skip: Style,
    pub done: Style,
    pub na: Style,
    pub running: Style,
    pub waiting: Style,
    pub doubt: Style,
    pub ok: Style,
    pub warn: Style,
    pub danger: Style,
    pub badge_drill: Style,
    pub badge_dry: Style,
    pub hint: Style,
    pub key: Style,
    pub code: Style,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    name: String,
    text: String,
    dim: String,
    accent: String,
    title: String,
    border: String,
    border_focus: String,
    selected: String,
    header: String,
    pass: String,
    fail: String,
    skip: String,
    done: String,
    na: String,
    running: String,
    waiting: String,
    doubt: String,
    ok: String,
    warn: String,
    danger: String,
    badge_drill: String,
    badge_dry: String,
    hint: String,
    key: String,
    code: String,
}

/// Parses `"black on cyan bold"`.
pub fn parse_style(s: &str) -> Result<Style, String> {
    let mut style = Style::default();
    let mut words = s.split_whitespace().peekable();
    let mut fg_set = false;
    while let Some(w) = words.next() {
        let lw = w.to_ascii_lowercase();
        match lw.as_str() {
            "bold" => style = style.add_modifier(Modifier::BOLD),
            "italic" => style = style.add_modifier(Modifier::ITALIC),
            "underlined" | "underline" => style = style.add_modifier(Modifier::UNDERLINED),
            "reversed" | "reverse" => style = style.add_modifier(Modifier::REVERSED),
            "dim" => style = style.add_modifier(Modifier::DIM),
            "on" => {
                let c = words
                    .next()
                    .ok_or_else(|| format!("`{s}`: a colour is missing after `on`"))?;
                style = style.bg(parse_color(c)?);
            }
            _ if !fg_set => {
                style = style.fg(parse_color(w)?);
                fg_set = true;
            }
            _ => return Err(format!("`{s}`: unexpected `{w}`")),
        }
    }
    Ok(style)
}

fn parse_color(s: &str) -> Result<Color, String> {
    Color::from_str(s).map_err(|_| format!("`{s}` is not a colour (use a name or #rrggbb)"))
}

impl Theme {
    pub fn parse(text: &str) -> Result<Theme, String> {
        let r: RawTheme =
            toml::from_str(text).map_err(|e| format!("invalid theme: {}", e.message()))?;
        let p = parse_style;
        Ok(Theme {
            name: r.name,
            text: p(&r.text)?,
            dim: p(&r.dim)?,
            accent: p(&r.accent)?,
            title: p(&r.title)?,
            border: p(&r.border)?,
            border_focus: p(&r.border_focus)?,
            selected: p(&r.selected)?,
            header: p(&r.header)?,
            pass: p(&r.pass)?,
            fail: p(&r.fail)?,
            skip: p(&r.skip)?,
            done: p(&r.done)?,
            na: p(&r.na)?,
            running: p(&r.running)?,
            waiting: p(&r.waiting)?,
            doubt: p(&r.doubt)?,
            ok: p(&r.ok)?,
            warn: p(&r.warn)?,
            danger: p(&r.danger)?,
            badge_drill: p(&r.badge_drill)?,
            badge_dry: p(&r.badge_dry)?,
            hint: p(&r.hint)?,
            key: p(&r.key)?,
            code: p(&r.code)?,
        })
    }

    /// The default dark theme.
    pub fn dark() -> Theme {
        Theme::parse(DARK).unwrap_or_else(|_| Theme::monochrome())
    }

    pub fn high_contrast() -> Theme {
        Theme::parse(HIGH_CONTRAST).unwrap_or_else(|_| Theme::monochrome())
    }

    /// No colours at all (`NO_COLOR`): meaning is carried by labels, bold and reverse video.
    pub fn monochrome() -> Theme {
        let n = Style::default();
        let b = n.add_modifier(Modifier::BOLD);
        let r = n.add_modifier(Modifier::REVERSED);
        Theme {
            name: "no-color".into(),
            text: n,
            dim: n,
            accent: b,
            title: b,
            border: n,
            border_focus: b,
            selected: r,
            header: b.add_modifier(Modifier::UNDERLINED),
            pass: b,
            fail: b.add_modifier(Modifier::REVERSED),
            skip: n,
            done: n,
            na: n,
            running: b,
            waiting: n,
            doubt: b.add_modifier(Modifier::REVERSED),
            ok: n,
            warn: b,
            danger: b.add_modifier(Modifier::REVERSED),
            badge_drill: r.add_modifier(Modifier::BOLD),
            badge_dry: r.add_modifier(Modifier::BOLD),
            hint: b,
            key: b,
            code: n,
        }
    }

    /// Picks a theme by name (`dark`, `high-contrast`), honouring `no_color`.
    pub fn by_name(name: &str, no_color: bool) -> Theme {
        if no_color {
            return Theme::monochrome();
        }
        match name {
            "high-contrast" | "high_contrast" | "hc" => Theme::high_contrast(),
            _ => Theme::dark(),
        }
    }

    /// True when `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
    pub fn no_color_env() -> bool {
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_themes_parse() {
        assert_eq!(Theme::parse(DARK).map(|t| t.name), Ok("dark".to_string()));
        assert_eq!(
            Theme::parse(HIGH_CONTRAST).map(|t| t.name),
            Ok("high-contrast".to_string())
        );
    }

    #[test]
    fn style_parsing() {
        let s = parse_style("black on cyan bold").unwrap();
        assert_eq!(s.fg, Some(Color::Black));
        assert_eq!(s.bg, Some(Color::Cyan));
        assert!(s.add_modifier.contains(Modifier::BOLD));
        assert_eq!(
            parse_style("#ff0000").unwrap().fg,
            Some(Color::Rgb(255, 0, 0))
        );
        assert!(parse_style("red on").is_err());
        assert!(parse_style("red blue").is_err());
        assert!(parse_style("chartreuse-ish").is_err());
    }

    #[test]
    fn monochrome_has_no_colour() {
        let t = Theme::monochrome();
        for s in [t.pass, t.fail, t.selected, t.danger, t.badge_drill, t.doubt] {
            assert_eq!((s.fg, s.bg), (None, None));
        }
        assert_eq!(Theme::by_name("dark", true), t);
    }
}
