//! The administrator's view of the surge layer: capacity, lanes, queue,
//! refusals and bulkheads, the same figures as `/metrics`.

use super::RouteTable;
use crate::error::ApiError;
use crate::extract::Signed;
use crate::i18n::Tr;
use crate::pages::{render, Nav};
use crate::state::AppState;
use crate::surge::SurgeSnapshot;
use ardoise_admission::Lane;
use ardoise_core::policy;
use askama::Template;
use axum::extract::State;
use axum::response::Response;

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default().get("/admin/surge", surge_page)
}

/// One lane, ready to show.
struct LaneRow {
    name: &'static str,
    label: String,
    admitted: u64,
    queued: u64,
    rate: String,
    wait: String,
}

#[derive(Template)]
#[template(path = "admin/surge.html")]
struct SurgePage {
    t: Tr,
    nav: Nav,
    s: SurgeSnapshot,
    lanes: Vec<LaneRow>,
    session_share: String,
    overloaded: String,
}

/// `GET /admin/surge`: administrators only.
async fn surge_page(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    if !policy::may_administer(&signed.session.actor) {
        return Err(ApiError::Forbidden);
    }
    let t = signed.ctx.tr.clone();
    let s = state.surge.snapshot(state.clock.now_ms());
    let unknown = t.get("admin-surge-unknown");
    let lanes = s
        .lanes
        .iter()
        .map(|l| LaneRow {
            name: l.lane.as_str(),
            label: t.get(match l.lane {
                Lane::General => "admin-surge-lane-general",
                Lane::Staff => "admin-surge-lane-staff",
            }),
            admitted: l.admitted,
            queued: l.queued,
            rate: l
                .admission_rate
                .map_or_else(|| unknown.clone(), |r| format!("{r:.1}/s")),
            wait: l
                .estimated_wait
                .map_or_else(|| unknown.clone(), |d| format!("{} s", d.as_secs())),
        })
        .collect();
    let session_share = s
        .session_share()
        .map_or_else(|| unknown.clone(), |x| format!("{:.0} %", x * 100.0));
    let yes_no = |b: bool| {
        t.get(if b {
            "admin-surge-yes"
        } else {
            "admin-surge-no"
        })
    };
    let overloaded = format!(
        "{} {} · {} {}",
        t.get("admin-surge-signed-in"),
        yes_no(s.overloaded.0),
        t.get("admin-surge-pre-login"),
        yes_no(s.overloaded.1)
    );
    let page = SurgePage {
        nav: Nav::signed(t.get("admin-surge-title"), &signed.session),
        t,
        s,
        lanes,
        session_share,
        overloaded,
    };
    Ok(render(&page))
}
