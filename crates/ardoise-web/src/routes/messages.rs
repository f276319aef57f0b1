//! Messaging: the inbox, conversations and replies, composing with a
//! recipient picker that offers only allowed recipients, drafts, search,
//! reporting a message; the staff's containment (suspend an account's
//! sending, quarantine what it sent, handle reports) and the
//! establishment's communication rules. HTML pages and their JSON twins.
//!
//! Every check is made before anything is written: the rules
//! (`ardoise_core::messaging`) on every recipient, then the limits; the
//! message, its recipient rows and its files are then committed in one
//! transaction, and only then acknowledged.

use super::RouteTable;
use crate::error::ApiError;
use crate::extract::{FormIn, JsonIn, Signed};
use crate::i18n::Tr;
use crate::pages::{render, Nav};
use crate::state::AppState;
use crate::upload::Uploaded;
use ardoise_core::diary::render_rich_text;
use ardoise_core::messaging::{self, Audience, CommRules, Contact, SendRefusal};
use ardoise_core::policy::ClassScope;
use ardoise_core::{ConversationId, DraftId, MessageId, PersonId, QuarantineId, ReportId, Role};
use ardoise_store::{
    AttachmentInsert, ConversationView, DraftView, InboxLine, MessageInsert, PeopleFilter,
    QuarantineView, ReportView, SearchHit, SuspensionView,
};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Conversations per inbox page.
const PAGE: i64 = 25;
/// Longest subject, in characters.
const MAX_SUBJECT: usize = 200;
/// Most audiences one message may name (a pupil's are fewer: the rules'
/// cap on recipients applies after resolution).
const MAX_AUDIENCES: usize = 100;

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/messages", inbox_page)
        .get("/messages/new", compose_page)
        .post_upload("/messages", send_form)
        .get("/messages/search", search_page)
        .get("/messages/drafts", drafts_page)
        .post("/messages/drafts/{id}/delete", delete_draft_form)
        .get("/messages/{id}", conversation_page)
        .post_upload("/messages/{id}/reply", reply_form)
        .post("/messages/items/{id}/report", report_form)
        .get("/messages/containment", containment_page)
        .post("/messages/containment/suspend", suspend_form)
        .post("/messages/containment/unsuspend", unsuspend_form)
        .post("/messages/containment/quarantine", quarantine_form)
        .post("/messages/containment/quarantines/{id}/lift", lift_form)
        .post(
            "/messages/containment/reports/{id}/close",
            close_report_form,
        )
        .get("/messages/rules", rules_page)
        .post("/messages/rules", rules_form)
        .get("/api/v1/messages", api_inbox)
        .post("/api/v1/messages", api_send)
        .get("/api/v1/messages/recipients", api_recipients)
        .get("/api/v1/messages/search", api_search)
        .get("/api/v1/messages/drafts", api_drafts)
        .post("/api/v1/messages/drafts", api_save_draft)
        .delete("/api/v1/messages/drafts/{id}", api_delete_draft)
        .get("/api/v1/messages/{id}", api_conversation)
        .post("/api/v1/messages/{id}/reply", api_reply)
        .post("/api/v1/messages/items/{id}/report", api_report)
        .get("/api/v1/messages/containment", api_containment)
        .post("/api/v1/messages/containment/suspensions", api_suspend)
        .post("/api/v1/messages/containment/quarantines", api_quarantine)
        .post(
            "/api/v1/messages/containment/quarantines/{id}/lift",
            api_lift,
        )
        .get("/api/v1/messages/rules", api_rules)
        .put("/api/v1/messages/rules", api_set_rules)
}

// ---------------------------------------------------------------- rules

/// Recipients resolved from what the sender chose.
struct Resolved {
    people: Vec<PersonId>,
    label: String,
    broadcast: bool,
}

/// Resolves audiences into people now, checking each against the rules:
/// a whole audience by who may address it, a person by who may write to
/// them. Unknown → 422, forbidden → 403; nothing is written.
async fn resolve(
    state: &AppState,
    signed: &Signed,
    audiences: &[Audience],
    rules: &CommRules,
) -> Result<Resolved, ApiError> {
    let actor = &signed.session.actor;
    let t = &signed.ctx.tr;
    if audiences.is_empty() {
        return Err(ApiError::Invalid("recipients_missing"));
    }
    if audiences.len() > MAX_AUDIENCES {
        return Err(ApiError::Invalid("too_many_recipients"));
    }
    let mut people: BTreeSet<PersonId> = BTreeSet::new();
    let mut persons: Vec<PersonId> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut broadcast = false;
    for &a in audiences {
        let Audience::Person(p) = a else {
            let e = state
                .store
                .audience_establishment(a)
                .await?
                .ok_or(ApiError::Invalid("recipient_unknown"))?;
            if !messaging::may_address(actor, a, e) {
                return Err(ApiError::Refused("recipient_not_allowed"));
            }
            broadcast = true;
            labels.push(audience_label(state, t, a).await?);
            people.extend(state.store.audience_members(a).await?);
            continue;
        };
        persons.push(p);
    }
    if !persons.is_empty() {
        let contacts = state.store.contacts(&persons).await?;
        for p in &persons {
            let c = contacts
                .iter()
                .find(|c| c.id == *p)
                .ok_or(ApiError::Invalid("recipient_unknown"))?;
            if !messaging::may_write(actor, c, rules) {
                return Err(ApiError::Refused("recipient_not_allowed"));
            }
            people.insert(*p);
        }
        for p in persons.iter().take(10) {
            if let Some(s) = state.store.find_person(*p).await? {
                labels.push(s.display_name());
            }
        }
        if persons.len() > 10 {
            labels.push(t.with(
                "msg-and-more",
                &[("count", &(persons.len() - 10).to_string())],
            ));
        }
    }
    people.remove(&actor.person_id);
    if people.is_empty() {
        return Err(ApiError::Invalid("recipients_empty"));
    }
    Ok(Resolved {
        people: people.into_iter().collect(),
        label: labels.join(", "),
        broadcast,
    })
}

async fn audience_label(state: &AppState, t: &Tr, a: Audience) -> Result<String, ApiError> {
    let class_name = |c: ardoise_core::ClassId| async move {
        Ok::<_, ApiError>(
            state
                .store
                .find_class(c)
                .await?
                .map(|c| c.name)
                .unwrap_or_default(),
        )
    };
    Ok(match a {
        Audience::Person(p) => state
            .store
            .find_person(p)
            .await?
            .map(|p| p.display_name())
            .unwrap_or_default(),
        Audience::Class(c) => t.with("msg-aud-class", &[("name", &class_name(c).await?)]),
        Audience::ClassParents(c) => t.with("msg-aud-parents", &[("name", &class_name(c).await?)]),
        Audience::ClassTeachers(c) => {
            t.with("msg-aud-teachers", &[("name", &class_name(c).await?)])
        }
        Audience::Group(g) => t.with(
            "msg-aud-group",
            &[(
                "name",
                &state.store.group_name(g).await?.unwrap_or_default(),
            )],
        ),
    })
}

/// The limits: suspension, hourly rate, recipients per pupil's message.
async fn check_limits(
    state: &AppState,
    signed: &Signed,
    rules: &CommRules,
    recipients: usize,
) -> Result<(), ApiError> {
    let me = signed.session.person_id();
    let suspended = state.store.is_suspended(me).await?;
    let sent = state.store.sent_since(me, state.now() - 3600).await?;
    messaging::check_limits(
        &signed.session.actor,
        rules,
        suspended,
        u32::try_from(sent).unwrap_or(u32::MAX),
        recipients,
    )
    .map_err(|r| match r {
        SendRefusal::Suspended => ApiError::Refused(r.code()),
        SendRefusal::RateLimited => ApiError::Limited(r.code()),
        SendRefusal::TooManyRecipients => ApiError::Invalid(r.code()),
    })
}

fn clean_subject(s: &str) -> Result<String, ApiError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > MAX_SUBJECT || s.chars().any(char::is_control) {
        return Err(ApiError::Invalid("subject_invalid"));
    }
    Ok(s.to_string())
}

fn body_html(body: &str) -> Result<String, ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::Invalid("message_empty"));
    }
    render_rich_text(body).map_err(super::diary::rich_text_error)
}

/// Parses the chosen audiences; anything unreadable is an unknown
/// recipient.
fn parse_audiences<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Audience>, ApiError> {
    let mut out: Vec<Audience> = Vec::new();
    for s in items {
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        let a = Audience::parse(s).ok_or(ApiError::Invalid("recipient_unknown"))?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// Checks and sends a new message; answers its conversation and id once
/// durable.
async fn send_core(
    state: &AppState,
    signed: &Signed,
    subject: &str,
    body: &str,
    audiences: &[Audience],
    files: Vec<AttachmentInsert>,
) -> Result<(ConversationId, MessageId), ApiError> {
    let subject = clean_subject(subject)?;
    let html = body_html(body)?;
    let actor = &signed.session.actor;
    let rules = state.store.comm_rules(actor.establishment_id).await?;
    let r = resolve(state, signed, audiences, &rules).await?;
    check_limits(state, signed, &rules, r.people.len()).await?;
    let m = MessageInsert {
        conversation_id: None,
        establishment_id: actor.establishment_id,
        subject,
        broadcast: r.broadcast,
        sender_id: actor.person_id,
        body_source: body.trim().to_string(),
        body_html: html,
        recipients_label: r.label,
        recipients: r.people,
        sent_at: state.now(),
        files,
    };
    Ok(state.store.send_message(&m).await?)
}

/// Checks and sends a reply: a recipient of a message sent to many answers
/// its sender only; otherwise everyone in the conversation gets it, unless
/// the replier picks one person who wrote in it (`only`). Each recipient
/// must be one the rules allow, or one who wrote to the replier.
async fn reply_core(
    state: &AppState,
    signed: &Signed,
    id: i64,
    body: &str,
    only: Option<PersonId>,
    files: Vec<AttachmentInsert>,
) -> Result<MessageId, ApiError> {
    let actor = &signed.session.actor;
    let me = actor.person_id;
    let conv = state
        .store
        .conversation_for(me, ConversationId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let html = body_html(body)?;
    let recipients: Vec<PersonId> = if let Some(p) = only {
        // Only someone whose message the replier can see in this thread.
        if p == me || !conv.messages.iter().any(|m| m.sender_id == p) {
            return Err(ApiError::Invalid("reply_to_unknown"));
        }
        vec![p]
    } else if conv.broadcast && conv.creator_id != me {
        vec![conv.creator_id]
    } else {
        state
            .store
            .conversation_participants(conv.id)
            .await?
            .into_iter()
            .filter(|p| *p != me)
            .collect()
    };
    if recipients.is_empty() {
        return Err(ApiError::Invalid("recipients_empty"));
    }
    let wrote: HashSet<PersonId> = conv
        .messages
        .iter()
        .map(|m| m.sender_id)
        .filter(|s| *s != me)
        .collect();
    let rules = state.store.comm_rules(actor.establishment_id).await?;
    let contacts: Vec<Contact> = state.store.contacts(&recipients).await?;
    if contacts.len() != recipients.len()
        || !contacts
            .iter()
            .all(|c| messaging::may_reply_to(actor, c, &rules, wrote.contains(&c.id)))
    {
        return Err(ApiError::Refused("recipient_not_allowed"));
    }
    check_limits(state, signed, &rules, recipients.len()).await?;
    let t = &signed.ctx.tr;
    let label = if recipients.len() == 1 {
        state
            .store
            .find_person(recipients[0])
            .await?
            .map(|p| p.display_name())
            .unwrap_or_default()
    } else {
        t.with(
            "msg-n-recipients",
            &[("count", &recipients.len().to_string())],
        )
    };
    let m = MessageInsert {
        conversation_id: Some(conv.id),
        establishment_id: conv.establishment_id,
        subject: conv.subject.clone(),
        broadcast: conv.broadcast,
        sender_id: me,
        body_source: body.trim().to_string(),
        body_html: html,
        recipients_label: label,
        recipients,
        sent_at: state.now(),
        files,
    };
    Ok(state.store.send_message(&m).await?.1)
}

/// One entry of the recipient picker.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Choice {
    /// What to send back: `person:12`, `class:3`, `parents:3`…
    pub value: String,
    pub label: String,
    /// A whole class, group, parents or teachers of a class.
    pub collective: bool,
}

/// The classes whose pupils and parents the caller may list one by one in
/// the picker: every class of the establishment for staff, the classes
/// they teach for a teacher.
async fn pickable_classes(
    state: &AppState,
    actor: &ardoise_core::Actor,
) -> Result<Vec<ardoise_store::ClassView>, ApiError> {
    let scope = if actor.is(Role::Staff) {
        ClassScope::Establishment(actor.establishment_id)
    } else if actor.is(Role::Teacher) {
        ClassScope::Only(actor.taught_classes.clone())
    } else {
        return Ok(Vec::new());
    };
    Ok(state.store.list_classes(&scope).await?)
}

/// The recipients the caller may write to, as the picker offers them:
/// whole audiences they may address, then people the rules allow. With
/// `class` (one of [`pickable_classes`], as [`class_filter`] checks), the
/// people are that class's pupils and parents, each named with their
/// children, and the school's adults.
async fn choices(
    state: &AppState,
    signed: &Signed,
    class: Option<ardoise_core::ClassId>,
) -> Result<Vec<Choice>, ApiError> {
    let actor = &signed.session.actor;
    let t = &signed.ctx.tr;
    let e = actor.establishment_id;
    let rules = state.store.comm_rules(e).await?;
    let mut audiences: Vec<Audience> = Vec::new();
    let mut candidates: Vec<PersonId> = Vec::new();
    // Pupils by id, to name parents by their children.
    let mut pupil_names: HashMap<PersonId, String> = HashMap::new();
    if let Some(c) = class {
        for p in state.store.class_pupils(c).await? {
            candidates.push(p.id);
            pupil_names.insert(p.id, p.display_name());
        }
        candidates.extend(
            state
                .store
                .audience_members(Audience::ClassParents(c))
                .await?,
        );
    }
    if actor.is(Role::Staff) {
        for c in state
            .store
            .list_classes(&ClassScope::Establishment(e))
            .await?
        {
            audiences.extend([
                Audience::Class(c.id),
                Audience::ClassParents(c.id),
                Audience::ClassTeachers(c.id),
            ]);
        }
    }
    if actor.is(Role::Teacher) {
        for c in &actor.taught_classes {
            audiences.extend([Audience::Class(*c), Audience::ClassParents(*c)]);
            if class.is_none() {
                candidates.extend(
                    state
                        .store
                        .class_pupils(*c)
                        .await?
                        .into_iter()
                        .map(|p| p.id),
                );
            }
        }
        audiences.extend(actor.taught_groups.iter().map(|g| Audience::Group(*g)));
    }
    if actor.is(Role::Pupil) {
        if let Some(c) = actor.class_id {
            audiences.push(Audience::ClassTeachers(c));
            if rules.pupils_to_pupils {
                candidates.extend(state.store.class_pupils(c).await?.into_iter().map(|p| p.id));
            }
        }
        candidates.extend(
            state
                .store
                .parents_of(actor.person_id)
                .await?
                .into_iter()
                .map(|p| p.id),
        );
    }
    if actor.is(Role::Parent) {
        for k in &actor.children {
            candidates.push(k.pupil_id);
            if let Some(c) = k.class_id {
                audiences.push(Audience::ClassTeachers(c));
            }
        }
    }
    for role in [Role::Teacher, Role::Staff] {
        let filter = PeopleFilter {
            establishment_id: Some(e),
            role: Some(role),
            limit: 500,
            ..PeopleFilter::default()
        };
        candidates.extend(
            state
                .store
                .list_people(&filter)
                .await?
                .into_iter()
                .map(|p| p.id),
        );
    }
    let mut seen = HashSet::new();
    audiences.retain(|a| seen.insert(*a));
    let mut out = Vec::new();
    for a in audiences {
        if messaging::may_address(actor, a, e) {
            out.push(Choice {
                value: a.encode(),
                label: audience_label(state, t, a).await?,
                collective: true,
            });
        }
    }
    candidates.sort();
    candidates.dedup();
    let contacts = state.store.contacts(&candidates).await?;
    let allowed: HashSet<PersonId> = contacts
        .iter()
        .filter(|c| messaging::may_write(actor, c, &rules))
        .map(|c| c.id)
        .collect();
    let children_of: HashMap<PersonId, Vec<String>> = contacts
        .iter()
        .map(|c| {
            let names = c
                .child_ids
                .iter()
                .filter_map(|k| pupil_names.get(k).cloned())
                .collect();
            (c.id, names)
        })
        .collect();
    let mut people = Vec::new();
    for p in candidates.into_iter().filter(|p| allowed.contains(p)) {
        if let Some(s) = state.store.find_person(p).await? {
            let what: Vec<String> = s
                .roles
                .iter()
                .map(|r| crate::pages::role_label(t, r))
                .collect();
            let mut label = format!("{} ({})", s.display_name(), what.join(", "));
            if let Some(c) = &s.class_name {
                label.push_str(&format!(" — {c}"));
            }
            if let Some(kids) = children_of.get(&p).filter(|k| !k.is_empty()) {
                label.push_str(" — ");
                label.push_str(&t.with("msg-parent-of", &[("names", &kids.join(", "))]));
            }
            people.push((
                s.last_name.to_lowercase(),
                Choice {
                    value: Audience::Person(p).encode(),
                    label,
                    collective: false,
                },
            ));
        }
    }
    people.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(people.into_iter().map(|(_, c)| c));
    Ok(out)
}

// ---------------------------------------------------------------- pages

/// A conversation line as shown.
pub struct InboxRow {
    pub id: i64,
    pub subject: String,
    pub last_sender: String,
    pub at: String,
    pub messages: i64,
    pub unread: i64,
}

fn inbox_rows(t: &Tr, lines: &[InboxLine]) -> Vec<InboxRow> {
    lines
        .iter()
        .map(|l| InboxRow {
            id: l.conversation_id.0,
            subject: l.subject.clone(),
            last_sender: l.last_sender.clone(),
            at: t.datetime(l.last_at),
            messages: l.messages,
            unread: l.unread,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "messages/inbox.html")]
struct InboxPage {
    t: Tr,
    nav: Nav,
    rows: Vec<InboxRow>,
    unread: i64,
    page: i64,
    has_more: bool,
    is_staff: bool,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    page: String,
}

fn page_number(s: &str) -> i64 {
    s.trim().parse::<i64>().unwrap_or(1).clamp(1, 10_000)
}

/// `GET /messages`: the inbox with unread counts.
async fn inbox_page(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let me = signed.session.person_id();
    let page = page_number(&q.page);
    let mut lines = state.store.inbox(me, PAGE + 1, (page - 1) * PAGE).await?;
    let has_more = lines.len() as i64 > PAGE;
    lines.truncate(PAGE as usize);
    let t = signed.ctx.tr.clone();
    let actor = &signed.session.actor;
    let p = InboxPage {
        nav: Nav::signed(t.get("msg-inbox-title"), &signed.session),
        rows: inbox_rows(&t, &lines),
        unread: state.store.unread_count(me).await?,
        page,
        has_more,
        is_staff: actor.is(Role::Staff) || actor.is(Role::Admin),
        t,
    };
    Ok(render(&p))
}

/// A message as shown.
pub struct MessageShown {
    pub id: i64,
    pub sender: String,
    pub mine: bool,
    pub at: String,
    pub to: String,
    pub body_html: String,
    pub unread: bool,
    pub files: Vec<super::work::FileLink>,
}

#[derive(Template)]
#[template(path = "messages/conversation.html")]
struct ConversationPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    id: i64,
    subject: String,
    messages: Vec<MessageShown>,
    reply_to_sender_only: bool,
    /// When a reply would go to several people: the others who wrote in
    /// the conversation, each of whom can be answered alone (id, label).
    reply_one: Vec<(i64, String)>,
    max_upload: String,
}

/// Loads a conversation the caller is part of and marks it read.
async fn open_conversation(
    state: &AppState,
    signed: &Signed,
    id: i64,
) -> Result<ConversationView, ApiError> {
    let me = signed.session.person_id();
    let conv = state
        .store
        .conversation_for(me, ConversationId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    state.store.mark_read(me, conv.id).await?;
    Ok(conv)
}

/// `GET /messages/{id}`: a conversation, for its participants only.
async fn conversation_page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let conv = open_conversation(&state, &signed, id).await?;
    let t = signed.ctx.tr.clone();
    let me = signed.session.person_id();
    let messages = conv
        .messages
        .iter()
        .map(|m| MessageShown {
            id: m.id.0,
            sender: m.sender_name.clone(),
            mine: m.sender_id == me,
            at: t.datetime(m.sent_at),
            to: m.recipients_label.clone(),
            body_html: m.body_html.clone(),
            unread: m.unread,
            files: super::work::file_links(&t, &m.files),
        })
        .collect();
    let reply_to_sender_only = conv.broadcast && conv.creator_id != me;
    let mut reply_one: Vec<(i64, String)> = Vec::new();
    if !reply_to_sender_only
        && state
            .store
            .conversation_participants(conv.id)
            .await?
            .iter()
            .filter(|p| **p != me)
            .count()
            > 1
    {
        for m in &conv.messages {
            if m.sender_id != me && !reply_one.iter().any(|(id, _)| *id == m.sender_id.0) {
                reply_one.push((
                    m.sender_id.0,
                    t.with("msg-reply-only", &[("name", &m.sender_name)]),
                ));
            }
        }
    }
    let p = ConversationPage {
        nav: Nav::signed(conv.subject.clone(), &signed.session),
        csrf: signed.session.csrf_token.clone(),
        id: conv.id.0,
        subject: conv.subject.clone(),
        messages,
        reply_to_sender_only,
        reply_one,
        max_upload: super::work::size_label(
            &t,
            i64::try_from(state.config.max_upload_bytes).unwrap_or(i64::MAX),
        ),
        t,
    };
    Ok(render(&p))
}

#[derive(Template)]
#[template(path = "messages/compose.html")]
struct ComposePage {
    t: Tr,
    nav: Nav,
    csrf: String,
    draft_id: String,
    subject: String,
    body: String,
    collective: Vec<Picked>,
    people: Vec<Picked>,
    /// Classes to list pupils and parents of: (id, name, chosen).
    classes: Vec<(i64, String, bool)>,
    max_upload: String,
}

/// A choice of the picker, ticked or not.
pub struct Picked {
    pub choice: Choice,
    pub on: bool,
}

#[derive(Deserialize, Default)]
struct ComposeQuery {
    #[serde(default)]
    draft: String,
    /// A class whose pupils and parents the picker lists.
    #[serde(default)]
    class: String,
    #[serde(default)]
    to: String,
}

/// `GET /messages/new`: the compose form, with only allowed recipients.
async fn compose_page(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<ComposeQuery>,
) -> Result<Response, ApiError> {
    let me = signed.session.person_id();
    let draft = match q.draft.trim().parse::<i64>() {
        Ok(id) => Some(
            state
                .store
                .find_draft(me, DraftId(id))
                .await?
                .ok_or(ApiError::NotFound)?,
        ),
        Err(_) => None,
    };
    let chosen: HashSet<String> = draft
        .as_ref()
        .map(|d| d.recipients.as_str())
        .unwrap_or(q.to.as_str())
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pickable = pickable_classes(&state, &signed.session.actor).await?;
    let class = class_filter(&q.class, &pickable)?;
    let all = choices(&state, &signed, class).await?;
    let classes = pickable
        .into_iter()
        .map(|c| (c.id.0, c.name, class == Some(c.id)))
        .collect();
    let (collective, people): (Vec<Choice>, Vec<Choice>) =
        all.into_iter().partition(|c| c.collective);
    let mark = |v: Vec<Choice>| -> Vec<Picked> {
        v.into_iter()
            .map(|choice| Picked {
                on: chosen.contains(&choice.value),
                choice,
            })
            .collect()
    };
    let t = signed.ctx.tr.clone();
    let p = ComposePage {
        nav: Nav::signed(t.get("msg-compose-title"), &signed.session),
        csrf: signed.session.csrf_token.clone(),
        draft_id: draft
            .as_ref()
            .map(|d| d.id.0.to_string())
            .unwrap_or_default(),
        subject: draft
            .as_ref()
            .map(|d| d.subject.clone())
            .unwrap_or_default(),
        body: draft.as_ref().map(|d| d.body.clone()).unwrap_or_default(),
        collective: mark(collective),
        people: mark(people),
        classes,
        max_upload: super::work::size_label(
            &t,
            i64::try_from(state.config.max_upload_bytes).unwrap_or(i64::MAX),
        ),
        t,
    };
    Ok(render(&p))
}

/// The audiences a compose form carries: a checkbox per choice, named
/// `to:<audience>` (a form without repeated names), and a free `to` field
/// of space-separated audiences.
fn form_audiences(form: &Uploaded) -> Result<Vec<Audience>, ApiError> {
    let mut names: Vec<&str> = form
        .fields
        .keys()
        .filter_map(|k| k.strip_prefix("to:"))
        .collect();
    names.sort();
    let free = form.fields.get("to").map(String::as_str).unwrap_or("");
    names.extend(free.split_whitespace());
    parse_audiences(names)
}

/// `POST /messages`: sends the message, or saves it as a draft
/// (`action=draft`).
async fn send_form(
    State(state): State<AppState>,
    signed: Signed,
    form: Uploaded,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.get("csrf"))?;
    let me = signed.session.person_id();
    let draft_id = form.get("draft_id").trim().parse::<i64>().ok().map(DraftId);
    if form.get("action") == "draft" {
        let audiences = form_audiences(&form)?;
        let encoded: Vec<String> = audiences.iter().map(|a| a.encode()).collect();
        let subject = form.get("subject");
        let body = form.get("body");
        check_draft(&subject, &body)?;
        state
            .store
            .save_draft(
                me,
                draft_id,
                subject.trim(),
                &body,
                &encoded.join(" "),
                state.now(),
            )
            .await?
            .ok_or(ApiError::NotFound)?;
        return Ok(Redirect::to("/messages/drafts").into_response());
    }
    let audiences = form_audiences(&form)?;
    let (conv, _) = send_core(
        &state,
        &signed,
        &form.get("subject"),
        &form.get("body"),
        &audiences,
        form.attachments("files"),
    )
    .await?;
    if let Some(d) = draft_id {
        state.store.delete_draft(me, d).await?;
    }
    Ok(Redirect::to(&format!("/messages/{}", conv.0)).into_response())
}

fn check_draft(subject: &str, body: &str) -> Result<(), ApiError> {
    if subject.chars().count() > MAX_SUBJECT {
        return Err(ApiError::Invalid("subject_invalid"));
    }
    if body.chars().count() > ardoise_core::diary::MAX_TEXT_CHARS {
        return Err(ApiError::Invalid("text_too_long"));
    }
    if subject.trim().is_empty() && body.trim().is_empty() {
        return Err(ApiError::Invalid("message_empty"));
    }
    Ok(())
}

/// `POST /messages/{id}/reply`.
async fn reply_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    form: Uploaded,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.get("csrf"))?;
    let only = form.get("only").trim().parse::<i64>().ok().map(PersonId);
    let m = reply_core(
        &state,
        &signed,
        id,
        &form.get("body"),
        only,
        form.attachments("files"),
    )
    .await?;
    Ok(Redirect::to(&format!("/messages/{id}#m-{}", m.0)).into_response())
}

#[derive(Template)]
#[template(path = "messages/search.html")]
struct SearchPage {
    t: Tr,
    nav: Nav,
    q: String,
    hits: Vec<SearchHitShown>,
}

/// A search result as shown.
pub struct SearchHitShown {
    pub conversation_id: i64,
    pub message_id: i64,
    pub subject: String,
    pub sender: String,
    pub at: String,
    pub excerpt: String,
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search_core(
    state: &AppState,
    signed: &Signed,
    q: &str,
) -> Result<Vec<SearchHit>, ApiError> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    if q.chars().count() > 100 {
        return Err(ApiError::Invalid("query_too_long"));
    }
    Ok(state
        .store
        .search_messages(signed.session.person_id(), q, 50)
        .await?)
}

/// `GET /messages/search?q=`: in one's own messages only.
async fn search_page(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let hits = search_core(&state, &signed, &q.q).await?;
    let t = signed.ctx.tr.clone();
    let p = SearchPage {
        nav: Nav::signed(t.get("msg-search-title"), &signed.session),
        q: q.q.clone(),
        hits: hits
            .iter()
            .map(|h| SearchHitShown {
                conversation_id: h.conversation_id.0,
                message_id: h.message_id.0,
                subject: h.subject.clone(),
                sender: h.sender_name.clone(),
                at: t.datetime(h.sent_at),
                excerpt: h.excerpt.clone(),
            })
            .collect(),
        t,
    };
    Ok(render(&p))
}

#[derive(Template)]
#[template(path = "messages/drafts.html")]
struct DraftsPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    drafts: Vec<(DraftView, String)>,
}

/// `GET /messages/drafts`.
async fn drafts_page(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    let t = signed.ctx.tr.clone();
    let drafts = state
        .store
        .drafts_of(signed.session.person_id())
        .await?
        .into_iter()
        .map(|d| {
            let at = t.datetime(d.updated_at);
            (d, at)
        })
        .collect();
    let p = DraftsPage {
        nav: Nav::signed(t.get("msg-drafts-title"), &signed.session),
        csrf: signed.session.csrf_token.clone(),
        drafts,
        t,
    };
    Ok(render(&p))
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /messages/drafts/{id}/delete`.
async fn delete_draft_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    if !state
        .store
        .delete_draft(signed.session.person_id(), DraftId(id))
        .await?
    {
        return Err(ApiError::NotFound);
    }
    Ok(Redirect::to("/messages/drafts").into_response())
}

/// Records a report of a message the caller received.
async fn report_core(
    state: &AppState,
    signed: &Signed,
    id: i64,
    reason: &str,
) -> Result<(ConversationId, ReportId), ApiError> {
    let me = signed.session.person_id();
    let conv = state
        .store
        .message_visible_to(me, MessageId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let reason: String = reason.trim().chars().take(1000).collect();
    let report = state
        .store
        .report_message(MessageId(id), me, &reason, state.now())
        .await?;
    state
        .store
        .record_audit(
            state.now(),
            Some(me),
            "message.report",
            &format!("message:{id}"),
            &reason,
        )
        .await?;
    Ok((conv, report))
}

#[derive(Deserialize)]
struct ReportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /messages/items/{id}/report`: tells staff about a message.
async fn report_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<ReportForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    let (conv, _) = report_core(&state, &signed, id, &f.reason).await?;
    Ok(Redirect::to(&format!("/messages/{}?reported=1#m-{id}", conv.0)).into_response())
}

// ---------------------------------------------------------------- containment

fn require_containment(signed: &Signed) -> Result<(), ApiError> {
    let actor = &signed.session.actor;
    if messaging::may_contain(actor, actor.establishment_id) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// The establishment whose containment the caller sees (`None`: all, for
/// administrators).
fn containment_scope(signed: &Signed) -> Option<ardoise_core::EstablishmentId> {
    let actor = &signed.session.actor;
    (!actor.is(Role::Admin)).then_some(actor.establishment_id)
}

/// The account named by login (forms) or id (API), if the caller may
/// contain it.
async fn containable(
    state: &AppState,
    signed: &Signed,
    who: Who<'_>,
) -> Result<ardoise_store::PersonSummary, ApiError> {
    let p = match who {
        Who::Login(l) => {
            let login =
                ardoise_core::Login::parse(l).map_err(|_| ApiError::Invalid("person_unknown"))?;
            state.store.find_person_by_login(&login).await?
        }
        Who::Id(id) => state.store.find_person(PersonId(id)).await?,
    }
    .ok_or(ApiError::Invalid("person_unknown"))?;
    if !messaging::may_contain(&signed.session.actor, p.establishment_id) {
        return Err(ApiError::Invalid("person_unknown"));
    }
    Ok(p)
}

enum Who<'a> {
    Login(&'a str),
    Id(i64),
}

async fn suspend_core(
    state: &AppState,
    signed: &Signed,
    who: Who<'_>,
    suspend: bool,
    reason: &str,
) -> Result<(), ApiError> {
    require_containment(signed)?;
    let p = containable(state, signed, who).await?;
    let me = signed.session.person_id();
    let now = state.now();
    let reason: String = reason.trim().chars().take(1000).collect();
    if suspend {
        if p.id == me {
            return Err(ApiError::Invalid("cannot_contain_self"));
        }
        state.store.suspend_sending(p.id, me, now, &reason).await?;
    } else {
        state.store.lift_suspension(p.id).await?;
    }
    state
        .store
        .record_audit(
            now,
            Some(me),
            if suspend {
                "messaging.suspend"
            } else {
                "messaging.unsuspend"
            },
            &format!("person:{}", p.id),
            &reason,
        )
        .await?;
    Ok(())
}

async fn quarantine_core(
    state: &AppState,
    signed: &Signed,
    who: Who<'_>,
    from: Option<i64>,
    to: Option<i64>,
    reason: &str,
) -> Result<(QuarantineId, i64), ApiError> {
    require_containment(signed)?;
    let p = containable(state, signed, who).await?;
    let me = signed.session.person_id();
    if p.id == me {
        return Err(ApiError::Invalid("cannot_contain_self"));
    }
    let now = state.now();
    let from = from.unwrap_or(0);
    let to = to.unwrap_or(now);
    if from < 0 || to < from {
        return Err(ApiError::Invalid("window_invalid"));
    }
    let reason: String = reason.trim().chars().take(1000).collect();
    let (id, n) = state
        .store
        .quarantine(p.id, from, to, me, now, &reason)
        .await?;
    state
        .store
        .record_audit(
            now,
            Some(me),
            "messaging.quarantine",
            &format!("person:{}", p.id),
            &format!(
                "quarantine {} from {from} to {to}: {n} messages; {reason}",
                id.0
            ),
        )
        .await?;
    Ok((id, n))
}

async fn lift_core(state: &AppState, signed: &Signed, id: i64) -> Result<i64, ApiError> {
    require_containment(signed)?;
    let q = state
        .store
        .find_quarantine(QuarantineId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    if !messaging::may_contain(&signed.session.actor, q.sender_establishment) {
        return Err(ApiError::NotFound);
    }
    let now = state.now();
    let me = signed.session.person_id();
    let n = state.store.lift_quarantine(q.id, me, now).await?;
    state
        .store
        .record_audit(
            now,
            Some(me),
            "messaging.quarantine_lift",
            &format!("person:{}", q.sender_id),
            &format!("quarantine {id}: {n} messages restored"),
        )
        .await?;
    Ok(n)
}

/// Reads a `datetime-local` value (`2026-11-23T10:00`, UTC) or nothing.
fn parse_when(s: &str) -> Result<Option<i64>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let fmt = if s.len() > 16 {
        "%Y-%m-%dT%H:%M:%S"
    } else {
        "%Y-%m-%dT%H:%M"
    };
    chrono::NaiveDateTime::parse_from_str(s, fmt)
        .map(|d| Some(d.and_utc().timestamp()))
        .map_err(|_| ApiError::Invalid("window_invalid"))
}

/// A quarantine as shown, with what it holds.
pub struct QuarantineShown {
    pub q: QuarantineView,
    pub from: String,
    pub to: String,
    pub at: String,
    pub held: Vec<ardoise_store::HeldMessage>,
}

#[derive(Template)]
#[template(path = "messages/containment.html")]
struct ContainmentPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    suspensions: Vec<(SuspensionView, String)>,
    quarantines: Vec<QuarantineShown>,
    reports: Vec<(ReportView, String)>,
}

/// `GET /messages/containment`: staff's tools against misuse.
async fn containment_page(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Response, ApiError> {
    require_containment(&signed)?;
    let scope = containment_scope(&signed);
    let t = signed.ctx.tr.clone();
    let suspensions = match scope {
        Some(e) => state.store.suspensions(e).await?,
        None => {
            state
                .store
                .suspensions(signed.session.actor.establishment_id)
                .await?
        }
    }
    .into_iter()
    .map(|s| {
        let at = t.datetime(s.at);
        (s, at)
    })
    .collect();
    let mut quarantines = Vec::new();
    for q in state.store.quarantines(scope).await? {
        let held = if q.lifted_at.is_none() {
            state.store.held_messages(q.id).await?
        } else {
            Vec::new()
        };
        quarantines.push(QuarantineShown {
            from: t.datetime(q.from_at),
            to: t.datetime(q.to_at),
            at: t.datetime(q.decided_at),
            held,
            q,
        });
    }
    let reports = state
        .store
        .open_reports(scope)
        .await?
        .into_iter()
        .map(|r| {
            let at = t.datetime(r.reported_at);
            (r, at)
        })
        .collect();
    let p = ContainmentPage {
        nav: Nav::signed(t.get("msg-containment-title"), &signed.session),
        csrf: signed.session.csrf_token.clone(),
        suspensions,
        quarantines,
        reports,
        t,
    };
    Ok(render(&p))
}

#[derive(Deserialize)]
struct SuspendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    reason: String,
}

/// `POST /messages/containment/suspend`.
async fn suspend_form(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(f): FormIn<SuspendForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    suspend_core(&state, &signed, Who::Login(&f.login), true, &f.reason).await?;
    Ok(Redirect::to("/messages/containment").into_response())
}

/// `POST /messages/containment/unsuspend`.
async fn unsuspend_form(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(f): FormIn<SuspendForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    suspend_core(&state, &signed, Who::Login(&f.login), false, &f.reason).await?;
    Ok(Redirect::to("/messages/containment").into_response())
}

#[derive(Deserialize)]
struct QuarantineForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    reason: String,
    /// Also suspend the account's sending.
    #[serde(default)]
    suspend: String,
}

/// `POST /messages/containment/quarantine`: hides everything the account
/// sent in the window from every recipient at once.
async fn quarantine_form(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(f): FormIn<QuarantineForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    let from = parse_when(&f.from)?;
    let to = parse_when(&f.to)?;
    if !f.suspend.is_empty() {
        suspend_core(&state, &signed, Who::Login(&f.login), true, &f.reason).await?;
    }
    quarantine_core(&state, &signed, Who::Login(&f.login), from, to, &f.reason).await?;
    Ok(Redirect::to("/messages/containment").into_response())
}

/// `POST /messages/containment/quarantines/{id}/lift`: restores the
/// messages.
async fn lift_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    lift_core(&state, &signed, id).await?;
    Ok(Redirect::to("/messages/containment").into_response())
}

/// `POST /messages/containment/reports/{id}/close`.
async fn close_report_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    require_containment(&signed)?;
    let r = state
        .store
        .find_report(ReportId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    if !messaging::may_contain(&signed.session.actor, r.establishment_id) {
        return Err(ApiError::NotFound);
    }
    let me = signed.session.person_id();
    state.store.close_report(r.id, me, state.now()).await?;
    state
        .store
        .record_audit(
            state.now(),
            Some(me),
            "message.report_close",
            &format!("message:{}", r.message_id),
            "",
        )
        .await?;
    Ok(Redirect::to("/messages/containment").into_response())
}

#[derive(Template)]
#[template(path = "messages/rules.html")]
struct RulesPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    rules: CommRules,
}

fn require_rules(signed: &Signed) -> Result<(), ApiError> {
    let actor = &signed.session.actor;
    if messaging::may_edit_rules(actor, actor.establishment_id) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// `GET /messages/rules`: the establishment's communication rules.
async fn rules_page(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    require_rules(&signed)?;
    let t = signed.ctx.tr.clone();
    let p = RulesPage {
        nav: Nav::signed(t.get("msg-rules-title"), &signed.session),
        csrf: signed.session.csrf_token.clone(),
        rules: state
            .store
            .comm_rules(signed.session.actor.establishment_id)
            .await?,
        t,
    };
    Ok(render(&p))
}

async fn set_rules_core(
    state: &AppState,
    signed: &Signed,
    rules: &CommRules,
) -> Result<(), ApiError> {
    require_rules(signed)?;
    if !rules.is_valid() {
        return Err(ApiError::Invalid("rules_invalid"));
    }
    let e = signed.session.actor.establishment_id;
    let me = signed.session.person_id();
    state
        .store
        .set_comm_rules(e, rules, me, state.now())
        .await?;
    state
        .store
        .record_audit(
            state.now(),
            Some(me),
            "messaging.rules",
            &format!("establishment:{e}"),
            &serde_json::to_string(rules).unwrap_or_default(),
        )
        .await?;
    Ok(())
}

/// `POST /messages/rules`.
async fn rules_form(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(f): FormIn<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    signed.check_csrf(f.get("csrf").map(String::as_str).unwrap_or(""))?;
    let num = |k: &str| -> Result<u32, ApiError> {
        f.get(k)
            .map(|v| v.trim())
            .unwrap_or("")
            .parse::<u32>()
            .map_err(|_| ApiError::Invalid("rules_invalid"))
    };
    let on = |k: &str| f.get(k).is_some_and(|v| !v.is_empty() && v != "0");
    let rules = CommRules {
        pupils_to_pupils: on("pupils_to_pupils"),
        pupils_to_parents: on("pupils_to_parents"),
        parents_to_parents: on("parents_to_parents"),
        pupil_hourly_limit: num("pupil_hourly_limit")?,
        adult_hourly_limit: num("adult_hourly_limit")?,
        pupil_max_recipients: num("pupil_max_recipients")?,
    };
    set_rules_core(&state, &signed, &rules).await?;
    Ok(Redirect::to("/messages/rules").into_response())
}

// ---------------------------------------------------------------- API

/// An inbox.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InboxOut {
    /// Unread messages in all conversations.
    pub unread: i64,
    pub conversations: Vec<InboxLineOut>,
}

/// A conversation in the inbox.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InboxLineOut {
    pub id: i64,
    pub subject: String,
    pub last_sender: String,
    /// Unix time of the latest message.
    pub last_at: i64,
    pub messages: i64,
    pub unread: i64,
}

/// `GET /api/v1/messages?page=`
#[utoipa::path(get, path = "/api/v1/messages", tag = "messages",
    params(("page" = Option<i64>, Query, description = "Page, from 1")),
    responses((status = 200, body = InboxOut)))]
async fn api_inbox(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<PageQuery>,
) -> Result<Json<InboxOut>, ApiError> {
    let me = signed.session.person_id();
    let page = page_number(&q.page);
    let lines = state.store.inbox(me, PAGE, (page - 1) * PAGE).await?;
    Ok(Json(InboxOut {
        unread: state.store.unread_count(me).await?,
        conversations: lines
            .into_iter()
            .map(|l| InboxLineOut {
                id: l.conversation_id.0,
                subject: l.subject,
                last_sender: l.last_sender,
                last_at: l.last_at,
                messages: l.messages,
                unread: l.unread,
            })
            .collect(),
    }))
}

/// A new message.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SendIn {
    pub subject: String,
    /// Plain text with **bold**, *italics* and lists; no HTML.
    pub body: String,
    /// Audiences: `person:12`, `class:3`, `group:4`, `parents:3` (parents
    /// of class 3), `teachers:3` (teachers of class 3).
    pub to: Vec<String>,
    /// Documents of the caller's document space (or shared with them) to
    /// attach, by id: the message carries the same stored files.
    #[serde(default)]
    pub documents: Vec<i64>,
}

/// The attachments named by document ids: each must be a document the
/// caller may read now; an unknown or hidden one refuses the whole message.
async fn document_attachments(
    state: &AppState,
    signed: &Signed,
    ids: &[i64],
) -> Result<Vec<AttachmentInsert>, ApiError> {
    if ids.len() > state.config.max_files_per_form {
        return Err(ApiError::Invalid("too_many_files"));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let d = super::documents::readable_document(state, &signed.session.actor, *id)
            .await
            .map_err(|e| match e {
                ApiError::NotFound => ApiError::Invalid("attachment_unknown"),
                other => other,
            })?;
        out.push(AttachmentInsert {
            blob_hash: d.blob_hash,
            file_name: d.name,
            mime: d.mime,
            size: d.size,
        });
    }
    Ok(out)
}

/// A message, once durable.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SentOut {
    pub conversation_id: i64,
    pub message_id: i64,
}

/// `POST /api/v1/messages`
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", request_body = SendIn,
    responses((status = 201, body = SentOut), (status = 403, description = "A recipient the rules forbid, or sending suspended"),
        (status = 422, description = "Empty, unknown recipient, unsafe text, too many recipients"),
        (status = 429, description = "Hourly sending limit reached")))]
async fn api_send(
    State(state): State<AppState>,
    signed: Signed,
    JsonIn(m): JsonIn<SendIn>,
) -> Result<Response, ApiError> {
    let audiences = parse_audiences(m.to.iter().map(String::as_str))?;
    let files = document_attachments(&state, &signed, &m.documents).await?;
    let (c, id) = send_core(&state, &signed, &m.subject, &m.body, &audiences, files).await?;
    Ok((
        StatusCode::CREATED,
        Json(SentOut {
            conversation_id: c.0,
            message_id: id.0,
        }),
    )
        .into_response())
}

/// The picker's filter: the pupils and parents of one class.
#[derive(Deserialize, Default)]
struct RecipientsQuery {
    #[serde(default)]
    class: String,
}

/// The `class` filter: empty for none, else the id of one of `pickable`
/// (any other class is not found).
fn class_filter(
    raw: &str,
    pickable: &[ardoise_store::ClassView],
) -> Result<Option<ardoise_core::ClassId>, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let id = raw
        .parse::<i64>()
        .map_err(|_| ApiError::BadRequest("class_invalid"))?;
    pickable
        .iter()
        .find(|c| c.id.0 == id)
        .map(|c| Some(c.id))
        .ok_or(ApiError::NotFound)
}

/// `GET /api/v1/messages/recipients`: whom the caller may write to; with
/// `?class=`, the pupils and parents of that class one by one (staff, and
/// the class's teachers).
#[utoipa::path(get, path = "/api/v1/messages/recipients", tag = "messages",
    params(("class" = Option<i64>, Query, description = "A class whose pupils and parents to list")),
    responses((status = 200, body = [Choice]), (status = 404, description = "Not a class the caller may list")))]
async fn api_recipients(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<RecipientsQuery>,
) -> Result<Json<Vec<Choice>>, ApiError> {
    let pickable = pickable_classes(&state, &signed.session.actor).await?;
    let class = class_filter(&q.class, &pickable)?;
    Ok(Json(choices(&state, &signed, class).await?))
}

/// A search result.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchHitOut {
    pub conversation_id: i64,
    pub message_id: i64,
    pub subject: String,
    pub sender: String,
    pub sent_at: i64,
    pub excerpt: String,
}

/// `GET /api/v1/messages/search?q=`
#[utoipa::path(get, path = "/api/v1/messages/search", tag = "messages",
    params(("q" = String, Query, description = "Words to find")),
    responses((status = 200, body = [SearchHitOut])))]
async fn api_search(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Vec<SearchHitOut>>, ApiError> {
    Ok(Json(
        search_core(&state, &signed, &q.q)
            .await?
            .into_iter()
            .map(|h| SearchHitOut {
                conversation_id: h.conversation_id.0,
                message_id: h.message_id.0,
                subject: h.subject,
                sender: h.sender_name,
                sent_at: h.sent_at,
                excerpt: h.excerpt,
            })
            .collect(),
    ))
}

/// A draft.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct DraftOut {
    pub id: i64,
    pub subject: String,
    pub body: String,
    pub to: Vec<String>,
    pub updated_at: i64,
}

fn draft_out(d: DraftView) -> DraftOut {
    DraftOut {
        id: d.id.0,
        subject: d.subject,
        body: d.body,
        to: d
            .recipients
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        updated_at: d.updated_at,
    }
}

/// `GET /api/v1/messages/drafts`
#[utoipa::path(get, path = "/api/v1/messages/drafts", tag = "messages",
    responses((status = 200, body = [DraftOut])))]
async fn api_drafts(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<Vec<DraftOut>>, ApiError> {
    Ok(Json(
        state
            .store
            .drafts_of(signed.session.person_id())
            .await?
            .into_iter()
            .map(draft_out)
            .collect(),
    ))
}

/// A draft to save.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DraftIn {
    /// To update a draft; none creates one.
    pub id: Option<i64>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub to: Vec<String>,
}

/// `POST /api/v1/messages/drafts`
#[utoipa::path(post, path = "/api/v1/messages/drafts", tag = "messages", request_body = DraftIn,
    responses((status = 200, body = DraftOut), (status = 404, description = "Not one of the caller's drafts")))]
async fn api_save_draft(
    State(state): State<AppState>,
    signed: Signed,
    JsonIn(d): JsonIn<DraftIn>,
) -> Result<Json<DraftOut>, ApiError> {
    check_draft(&d.subject, &d.body)?;
    let audiences = parse_audiences(d.to.iter().map(String::as_str))?;
    let encoded: Vec<String> = audiences.iter().map(|a| a.encode()).collect();
    let me = signed.session.person_id();
    let id = state
        .store
        .save_draft(
            me,
            d.id.map(DraftId),
            d.subject.trim(),
            &d.body,
            &encoded.join(" "),
            state.now(),
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let saved = state
        .store
        .find_draft(me, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(draft_out(saved)))
}

/// `DELETE /api/v1/messages/drafts/{id}`
#[utoipa::path(delete, path = "/api/v1/messages/drafts/{id}", tag = "messages",
    params(("id" = i64, Path, description = "Draft id")),
    responses((status = 204), (status = 404, description = "Not one of the caller's drafts")))]
async fn api_delete_draft(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if state
        .store
        .delete_draft(signed.session.person_id(), DraftId(id))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// A message in the API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageOut {
    pub id: i64,
    pub sender_id: i64,
    pub sender: String,
    pub sent_at: i64,
    /// Whom it was sent to, in words.
    pub to: String,
    pub recipient_count: i64,
    pub body_html: String,
    /// Not read before this request.
    pub unread: bool,
    pub files: Vec<super::work::FileOut>,
}

/// A conversation in the API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConversationOut {
    pub id: i64,
    pub subject: String,
    /// Whether a reply goes to the first sender only.
    pub reply_to_sender_only: bool,
    pub messages: Vec<MessageOut>,
}

/// `GET /api/v1/messages/{id}`: a conversation (marks it read).
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages",
    params(("id" = i64, Path, description = "Conversation id")),
    responses((status = 200, body = ConversationOut), (status = 404, description = "Not a conversation of the caller")))]
async fn api_conversation(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Json<ConversationOut>, ApiError> {
    let conv = open_conversation(&state, &signed, id).await?;
    let me = signed.session.person_id();
    Ok(Json(ConversationOut {
        id: conv.id.0,
        subject: conv.subject.clone(),
        reply_to_sender_only: conv.broadcast && conv.creator_id != me,
        messages: conv
            .messages
            .iter()
            .map(|m| MessageOut {
                id: m.id.0,
                sender_id: m.sender_id.0,
                sender: m.sender_name.clone(),
                sent_at: m.sent_at,
                to: m.recipients_label.clone(),
                recipient_count: m.recipient_count,
                body_html: m.body_html.clone(),
                unread: m.unread,
                files: super::work::files_out(&m.files),
            })
            .collect(),
    }))
}

/// A reply.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReplyIn {
    pub body: String,
    /// To answer one person who wrote in the conversation, not everyone.
    #[serde(default)]
    pub only: Option<i64>,
    /// Documents to attach, by id, as for a new message.
    #[serde(default)]
    pub documents: Vec<i64>,
}

/// `POST /api/v1/messages/{id}/reply`
#[utoipa::path(post, path = "/api/v1/messages/{id}/reply", tag = "messages", request_body = ReplyIn,
    params(("id" = i64, Path, description = "Conversation id")),
    responses((status = 201, body = SentOut), (status = 404, description = "Not a conversation of the caller"),
        (status = 403, description = "Sending suspended, or a recipient the rules forbid"),
        (status = 422, description = "Empty or unsafe text")))]
async fn api_reply(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(r): JsonIn<ReplyIn>,
) -> Result<Response, ApiError> {
    let files = document_attachments(&state, &signed, &r.documents).await?;
    let m = reply_core(&state, &signed, id, &r.body, r.only.map(PersonId), files).await?;
    Ok((
        StatusCode::CREATED,
        Json(SentOut {
            conversation_id: id,
            message_id: m.0,
        }),
    )
        .into_response())
}

/// A report.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReportIn {
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/messages/items/{id}/report`: reports a message one
/// received to staff.
#[utoipa::path(post, path = "/api/v1/messages/items/{id}/report", tag = "messages", request_body = ReportIn,
    params(("id" = i64, Path, description = "Message id")),
    responses((status = 204), (status = 404, description = "Not a message the caller may see")))]
async fn api_report(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(r): JsonIn<ReportIn>,
) -> Result<StatusCode, ApiError> {
    report_core(&state, &signed, id, &r.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Containment state of an establishment.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ContainmentOut {
    pub suspended: Vec<SuspendedOut>,
    pub quarantines: Vec<QuarantineOut>,
    pub reports: Vec<ReportOut>,
}

/// A suspended account.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SuspendedOut {
    pub person_id: i64,
    pub name: String,
    pub at: i64,
    pub reason: String,
}

/// A quarantine decision.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QuarantineOut {
    pub id: i64,
    pub sender_id: i64,
    pub sender: String,
    pub from: i64,
    pub to: i64,
    pub decided_at: i64,
    pub messages: i64,
    /// Unix time it was lifted, if it was.
    pub lifted_at: Option<i64>,
}

/// An open report.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportOut {
    pub id: i64,
    pub message_id: i64,
    pub sender_id: i64,
    pub sender: String,
    pub reporter: String,
    pub reason: String,
    pub reported_at: i64,
    pub quarantined: bool,
}

/// `GET /api/v1/messages/containment`
#[utoipa::path(get, path = "/api/v1/messages/containment", tag = "messages",
    responses((status = 200, body = ContainmentOut), (status = 404, description = "Not staff")))]
async fn api_containment(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<ContainmentOut>, ApiError> {
    require_containment(&signed)?;
    let scope = containment_scope(&signed);
    let e = scope.unwrap_or(signed.session.actor.establishment_id);
    Ok(Json(ContainmentOut {
        suspended: state
            .store
            .suspensions(e)
            .await?
            .into_iter()
            .map(|s| SuspendedOut {
                person_id: s.person_id.0,
                name: s.name,
                at: s.at,
                reason: s.reason,
            })
            .collect(),
        quarantines: state
            .store
            .quarantines(scope)
            .await?
            .into_iter()
            .map(|q| QuarantineOut {
                id: q.id.0,
                sender_id: q.sender_id.0,
                sender: q.sender_name,
                from: q.from_at,
                to: q.to_at,
                decided_at: q.decided_at,
                messages: q.message_count,
                lifted_at: q.lifted_at,
            })
            .collect(),
        reports: state
            .store
            .open_reports(scope)
            .await?
            .into_iter()
            .map(|r| ReportOut {
                id: r.id.0,
                message_id: r.message_id.0,
                sender_id: r.sender_id.0,
                sender: r.sender_name,
                reporter: r.reporter_name,
                reason: r.reason,
                reported_at: r.reported_at,
                quarantined: r.quarantined,
            })
            .collect(),
    }))
}

/// Suspends or restores an account's sending.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SuspendIn {
    pub person_id: i64,
    pub suspended: bool,
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/messages/containment/suspensions`
#[utoipa::path(post, path = "/api/v1/messages/containment/suspensions", tag = "messages", request_body = SuspendIn,
    responses((status = 204), (status = 404, description = "Not staff"), (status = 422, description = "Unknown person")))]
async fn api_suspend(
    State(state): State<AppState>,
    signed: Signed,
    JsonIn(s): JsonIn<SuspendIn>,
) -> Result<StatusCode, ApiError> {
    suspend_core(
        &state,
        &signed,
        Who::Id(s.person_id),
        s.suspended,
        &s.reason,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Quarantines what an account sent in a window.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct QuarantineIn {
    pub person_id: i64,
    /// Unix time; none: since the beginning.
    pub from: Option<i64>,
    /// Unix time; none: now.
    pub to: Option<i64>,
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/messages/containment/quarantines`
#[utoipa::path(post, path = "/api/v1/messages/containment/quarantines", tag = "messages", request_body = QuarantineIn,
    responses((status = 201, body = QuarantineOut), (status = 404, description = "Not staff"),
        (status = 422, description = "Unknown person or bad window")))]
async fn api_quarantine(
    State(state): State<AppState>,
    signed: Signed,
    JsonIn(q): JsonIn<QuarantineIn>,
) -> Result<Response, ApiError> {
    let (id, _) = quarantine_core(
        &state,
        &signed,
        Who::Id(q.person_id),
        q.from,
        q.to,
        &q.reason,
    )
    .await?;
    let q = state
        .store
        .find_quarantine(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((
        StatusCode::CREATED,
        Json(QuarantineOut {
            id: q.id.0,
            sender_id: q.sender_id.0,
            sender: q.sender_name,
            from: q.from_at,
            to: q.to_at,
            decided_at: q.decided_at,
            messages: q.message_count,
            lifted_at: q.lifted_at,
        }),
    )
        .into_response())
}

/// Messages restored.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LiftedOut {
    pub restored: i64,
}

/// `POST /api/v1/messages/containment/quarantines/{id}/lift`
#[utoipa::path(post, path = "/api/v1/messages/containment/quarantines/{id}/lift", tag = "messages",
    params(("id" = i64, Path, description = "Quarantine id")),
    responses((status = 200, body = LiftedOut), (status = 404, description = "Not staff of the sender's establishment")))]
async fn api_lift(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Json<LiftedOut>, ApiError> {
    Ok(Json(LiftedOut {
        restored: lift_core(&state, &signed, id).await?,
    }))
}

/// `GET /api/v1/messages/rules`
#[utoipa::path(get, path = "/api/v1/messages/rules", tag = "messages",
    responses((status = 200, body = CommRulesDoc), (status = 404, description = "Not staff")))]
async fn api_rules(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<CommRules>, ApiError> {
    require_rules(&signed)?;
    Ok(Json(
        state
            .store
            .comm_rules(signed.session.actor.establishment_id)
            .await?,
    ))
}

/// The communication rules, as the API reads and writes them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CommRulesDoc {
    pub pupils_to_pupils: bool,
    pub pupils_to_parents: bool,
    pub parents_to_parents: bool,
    pub pupil_hourly_limit: u32,
    pub adult_hourly_limit: u32,
    pub pupil_max_recipients: u32,
}

/// `PUT /api/v1/messages/rules`
#[utoipa::path(put, path = "/api/v1/messages/rules", tag = "messages", request_body = CommRulesDoc,
    responses((status = 204), (status = 404, description = "Not staff"), (status = 422, description = "A number out of bounds")))]
async fn api_set_rules(
    State(state): State<AppState>,
    signed: Signed,
    JsonIn(r): JsonIn<CommRules>,
) -> Result<StatusCode, ApiError> {
    set_rules_core(&state, &signed, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The OpenAPI description of this module.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        api_inbox,
        api_send,
        api_recipients,
        api_search,
        api_drafts,
        api_save_draft,
        api_delete_draft,
        api_conversation,
        api_reply,
        api_report,
        api_containment,
        api_suspend,
        api_quarantine,
        api_lift,
        api_rules,
        api_set_rules
    ),
    components(schemas(
        InboxOut,
        InboxLineOut,
        SendIn,
        SentOut,
        Choice,
        SearchHitOut,
        DraftOut,
        DraftIn,
        MessageOut,
        ConversationOut,
        ReplyIn,
        ReportIn,
        ContainmentOut,
        SuspendedOut,
        QuarantineOut,
        ReportOut,
        SuspendIn,
        QuarantineIn,
        LiftedOut,
        CommRulesDoc
    ))
)]
pub struct MessagesApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_fields_are_read_as_utc() {
        assert_eq!(parse_when("").ok(), Some(None));
        assert_eq!(
            parse_when("2026-11-23T10:00").ok(),
            Some(Some(1_795_428_000))
        );
        assert!(parse_when("23/11/2026").is_err());
    }

    #[test]
    fn audiences_are_read_once_and_unknown_ones_refused() {
        let a = parse_audiences(["person:3", " class:4 ", "person:3"]).ok();
        assert_eq!(
            a,
            Some(vec![
                Audience::Person(PersonId(3)),
                Audience::Class(ardoise_core::ClassId(4))
            ])
        );
        assert!(parse_audiences(["everyone:1"]).is_err());
    }
}
