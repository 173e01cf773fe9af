//! `sp_grantlogin`: creates a login for a Windows user or group. Deprecated but still shipped
//! (SQL Server 2022): "sp_grantlogin [ @loginame = ] 'login'", errors 15025 (exists) and 15401
//! when the name is not DOMAIN\name.
//! https://learn.microsoft.com/en-us/sql/relational-databases/system-stored-procedures/sp-grantlogin-transact-sql

use super::exec::{Ctx, Fail, R};
use super::procs::Args;
use super::state::Login;

pub fn grant_login(ctx: &mut Ctx, a: &Args) -> R<()> {
    let Some(name) = a.text("loginame").filter(|n| !n.trim().is_empty()) else {
        return Err(Fail::one(
            201,
            "Procedure or function 'sp_grantlogin' expects parameter '@loginame', which was not supplied.",
        ));
    };
    if ctx.instance().login(&name).is_some() {
        return Err(Fail::one(
            15025,
            format!("The server principal '{name}' already exists."),
        ));
    }
    if !name.contains('\\') {
        return Err(Fail::one(
            15401,
            format!("Windows NT user or group '{name}' not found. Check the name again."),
        ));
    }
    // The group or user exists in Windows when another instance of the group knows it; its
    // kind (user or group) comes from there, as Windows would say.
    let kind = ctx
        .g
        .instances
        .iter()
        .find_map(|i| i.login(&name).map(|l| l.kind))
        .unwrap_or('U');
    let n = u8::try_from(ctx.instance().logins.len() % 250).unwrap_or(0);
    ctx.instance_mut().logins.push(Login {
        name,
        kind,
        disabled: false,
        sysadmin: false,
        sid: vec![1, 5, 0, 0, 0, 0, 0, 5, 21, 200, n],
    });
    Ok(())
}
