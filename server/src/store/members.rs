//! Room membership and moderation: roles, adding and removing members, ownership, the room's
//! title, archiving and deleting, bans and timeouts, and the audit trail of all of them.
//!
//! Every change runs in one transaction that first touches the room's row (`acl_changed_at`):
//! that serialises changes to one room (a row lock on PostgreSQL, the write turn on SQLite), so
//! the actor's role is read and acted on without a race, and it tells every node's access poll
//! that the room's rules changed. The caller applies the new rules and publishes the system
//! message; a [`Refusal`] says why nothing changed.

use std::collections::{HashMap, HashSet};

use sqlx::{Any, Row, Transaction};
use switchboard_protocol::UserInfo;

use super::{now_ms, Result, Store};

/// A member's role in a room. Ranks: owner > admin > member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: UserInfo,
    pub role: Role,
}

/// Why a membership or moderation change was not made. Each is the caller's to fix (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no such room")]
    NoRoom,
    #[error("this room was deleted")]
    Deleted,
    #[error("this room is archived (read-only)")]
    Archived,
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("that user is not a member of this room")]
    NotMember,
    #[error("that user is banned from this room")]
    Banned,
    #[error("the owner cannot leave: transfer ownership first, or delete the room")]
    OwnerLeaving,
}

impl Refusal {
    /// The wire code of this refusal (see `switchboard_protocol::ErrorCode`).
    pub fn code(&self) -> switchboard_protocol::ErrorCode {
        use switchboard_protocol::ErrorCode;
        match self {
            Refusal::NoRoom | Refusal::Deleted | Refusal::NotMember => ErrorCode::NotFound,
            Refusal::Archived | Refusal::NotAllowed(_) | Refusal::Banned => ErrorCode::Forbidden,
            Refusal::OwnerLeaving => ErrorCode::Conflict,
        }
    }
}

/// What a change did: `false` when it was already so (a retried request changes nothing and
/// announces nothing).
pub type Changed = bool;

/// A room's rules beyond who its members are: kept on every node with the access decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Restrictions {
    /// Read-only: nobody publishes (system messages aside).
    pub archived: bool,
    /// Deleted: nobody reads or publishes.
    pub deleted: bool,
    /// Refused reading and publishing.
    pub banned: HashSet<String>,
    /// User → Unix ms until which they may not publish.
    pub timeouts: HashMap<String, i64>,
    /// A direct message one of whose two users blocked the other: read-only for both.
    #[serde(default)]
    pub blocked: bool,
}

/// A change made inside a room's transaction, with the actor's role in hand.
struct Locked<'c> {
    tx: Transaction<'c, Any>,
    room: String,
    private: bool,
    archived: bool,
    actor: Option<Role>,
    now: i64,
}

impl Locked<'_> {
    async fn role_of(&mut self, user: &str) -> Result<Option<Role>> {
        let row = sqlx::query("SELECT role FROM room_members WHERE room = $1 AND user_id = $2")
            .bind(&self.room)
            .bind(user)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.and_then(|r| Role::parse(&r.get::<String, _>(0))))
    }

    async fn is_banned(&mut self, user: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM room_bans WHERE room = $1 AND user_id = $2")
            .bind(&self.room)
            .bind(user)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.is_some())
    }

    async fn set_role(&mut self, user: &str, role: Role) -> Result<()> {
        sqlx::query("UPDATE room_members SET role = $3 WHERE room = $1 AND user_id = $2")
            .bind(&self.room)
            .bind(user)
            .bind(role.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn remove(&mut self, user: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM room_members WHERE room = $1 AND user_id = $2")
            .bind(&self.room)
            .bind(user)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn audit(
        &mut self,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: Option<&str>,
    ) -> Result<()> {
        // Every change audited here is announced in the room's channel: pending until stored.
        sqlx::query(
            "INSERT INTO room_audit (room, actor, action, target, detail, at, announce_pending) \
             VALUES ($1, $2, $3, $4, $5, $6, 1)",
        )
        .bind(&self.room)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Whether `actor` may moderate `target`: an owner or admin acting on someone below them
    /// (a non-member counts as below everyone), never on themselves.
    async fn outranks(&mut self, actor: &str, target: &str) -> Result<bool> {
        let target_role = self.role_of(target).await?;
        Ok(actor != target
            && self
                .actor
                .is_some_and(|a| a >= Role::Admin && target_role.is_none_or(|t| a > t)))
    }

    /// Refuses unless the actor holds at least `role`.
    fn require(&self, role: Role, why: &'static str) -> std::result::Result<(), Refusal> {
        match self.actor {
            Some(r) if r >= role => Ok(()),
            _ => Err(Refusal::NotAllowed(why)),
        }
    }

    fn writable(&self) -> std::result::Result<(), Refusal> {
        if self.archived {
            Err(Refusal::Archived)
        } else {
            Ok(())
        }
    }

    async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// A room change whose system message is not stored yet, with the users it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unannounced {
    pub id: i64,
    pub room: String,
    pub actor: UserInfo,
    pub action: String,
    pub target: Option<UserInfo>,
    pub detail: Option<String>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub at: i64,
}

type Outcome<T> = Result<std::result::Result<T, Refusal>>;

impl Store {
    /// Begins a change of `room` (its name as created) by `actor`: locks the room, marks its
    /// rules changed and reads the actor's role.
    async fn lock_room<'c>(
        &self,
        room: &str,
        actor: &str,
    ) -> Result<std::result::Result<Locked<'c>, Refusal>> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let touched = sqlx::query("UPDATE rooms SET acl_changed_at = $2 WHERE name = $1")
            .bind(room)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Ok(Err(Refusal::NoRoom));
        }
        let row = sqlx::query("SELECT private, archived, deleted, dm FROM rooms WHERE name = $1")
            .bind(room)
            .fetch_one(&mut *tx)
            .await?;
        if row.get::<i64, _>(2) != 0 {
            return Ok(Err(Refusal::Deleted));
        }
        if row.get::<i64, _>(3) != 0 {
            return Ok(Err(Refusal::NotAllowed(
                "a direct message has exactly its two users: its membership never changes",
            )));
        }
        let mut locked = Locked {
            tx,
            room: room.to_owned(),
            private: row.get::<i64, _>(0) != 0,
            archived: row.get::<i64, _>(1) != 0,
            actor: None,
            now,
        };
        locked.actor = locked.role_of(actor).await?;
        Ok(Ok(locked))
    }

    /// Adds `target` to `room` as a member. In a private room only owners and admins add
    /// members; in a public room anyone may join themselves and admins may add anyone.
    pub async fn add_member(&self, room: &str, actor: &str, target: &str) -> Outcome<Changed> {
        let _write = self.write_turn().await;
        let mut l = match self.lock_room(room, actor).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = l.writable() {
            return Ok(Err(r));
        }
        let joining_public = !l.private && actor == target;
        if !joining_public {
            if let Err(r) = l.require(Role::Admin, "only the room's owner and admins add members") {
                return Ok(Err(r));
            }
        }
        if l.is_banned(target).await? {
            return Ok(Err(Refusal::Banned));
        }
        if l.role_of(target).await?.is_some() {
            return Ok(Ok(false));
        }
        sqlx::query(
            "INSERT INTO room_members (room, user_id, role, joined_at) VALUES ($1, $2, 'member', $3)",
        )
        .bind(room)
        .bind(target)
        .bind(l.now)
        .execute(&mut *l.tx)
        .await?;
        l.audit(actor, "member_added", Some(target), None).await?;
        l.commit().await?;
        Ok(Ok(true))
    }

    /// Removes `target` from `room`: themselves (leaving; not the owner), or by an owner or
    /// admin who outranks them.
    pub async fn remove_member(&self, room: &str, actor: &str, target: &str) -> Outcome<Changed> {
        let _write = self.write_turn().await;
        let mut l = match self.lock_room(room, actor).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        let Some(role) = l.role_of(target).await? else {
            return Ok(Ok(false));
        };
        if actor == target {
            if role == Role::Owner {
                return Ok(Err(Refusal::OwnerLeaving));
            }
        } else if !l.actor.is_some_and(|a| a >= Role::Admin && a > role) {
            return Ok(Err(Refusal::NotAllowed(
                "only the room's owner, or an admin removing a member, removes someone else",
            )));
        }
        l.remove(target).await?;
        let action = if actor == target {
            "member_left"
        } else {
            "member_removed"
        };
        l.audit(actor, action, Some(target), None).await?;
        l.commit().await?;
        Ok(Ok(true))
    }

    /// Makes `target` an admin or a plain member (owners and admins may; never the owner).
    pub async fn change_role(
        &self,
        room: &str,
        actor: &str,
        target: &str,
        role: Role,
    ) -> Outcome<Changed> {
        if role == Role::Owner {
            return Ok(Err(Refusal::NotAllowed(
                "ownership moves with a transfer, not a role change",
            )));
        }
        let _write = self.write_turn().await;
        let mut l = match self.lock_room(room, actor).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = l.require(Role::Admin, "only the room's owner and admins change roles") {
            return Ok(Err(r));
        }
        match l.role_of(target).await? {
            None => Ok(Err(Refusal::NotMember)),
            Some(Role::Owner) => Ok(Err(Refusal::NotAllowed(
                "the owner's role changes only with a transfer",
            ))),
            Some(current) if current == role => Ok(Ok(false)),
            Some(_) => {
                l.set_role(target, role).await?;
                l.audit(actor, "role_changed", Some(target), Some(role.as_str()))
                    .await?;
                l.commit().await?;
                Ok(Ok(true))
            }
        }
    }

    /// Makes the member `target` the owner; the owner becomes an admin.
    pub async fn transfer_ownership(&self, room: &str, actor: &str, target: &str) -> Outcome<()> {
        let _write = self.write_turn().await;
        let mut l = match self.lock_room(room, actor).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = l.require(Role::Owner, "only the owner transfers ownership") {
            return Ok(Err(r));
        }
        if actor == target {
            return Ok(Err(Refusal::NotAllowed("the owner already owns the room")));
        }
        if l.role_of(target).await?.is_none() {
            return Ok(Err(Refusal::NotMember));
        }
        l.set_role(actor, Role::Admin).await?;
        l.set_role(target, Role::Owner).await?;
        l.audit(actor, "ownership_transferred", Some(target), None)
            .await?;
        l.commit().await?;
        Ok(Ok(()))
    }

    /// Sets the title (`Some(None)` clears it) and whether the room is archived (owner only).
    pub async fn update_room(
        &self,
        room: &str,
        actor: &str,
        title: Option<Option<&str>>,
        archived: Option<bool>,
    ) -> Outcome<()> {
        let _write = self.write_turn().await;
        let mut l = match self.lock_room(room, actor).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = l.require(Role::Owner, "only the owner renames or archives the room") {
            return Ok(Err(r));
        }
        if let Some(title) = title {
            sqlx::query("UPDATE rooms SET title = $2 WHERE name = $1")
                .bind(room)
                .bind(title)
                .execute(&mut *l.tx)
                .await?;
            l.audit(actor, "renamed", None, title).await?;
        }
        if let Some(archived) = archived {
            sqlx::query("UPDATE rooms SET archived = $2 WHERE name = $1")
                .bind(room)
                .bind(archived as i64)
                .execute(&mut *l.tx)
                .await?;
            let action = if archived { "archived" } else { "unarchived" };
            l.audit(actor, action, None, None).await?;
        }
        l.commit().await?;
        Ok(Ok(()))
    }

    /// Deletes the room (owner only): its messages, members, bans and timeouts are gone; its
    /// row stays, marked deleted, so the name and its offsets are never reused.
    pub async fn delete_room(&self, room: &str, actor: &str) -> Outcome<()> {
        let _write = self.write_turn().await;
        let mut l = match self.lock_room(room, actor).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = l.require(Role::Owner, "only the owner deletes the room") {
            return Ok(Err(r));
        }
        let channel = switchboard_protocol::ChannelKind::Room.name(room);
        for sql in [
            "DELETE FROM messages WHERE channel = $1",
            "DELETE FROM mention_outbox WHERE channel = $1",
        ] {
            sqlx::query(sql).bind(&channel).execute(&mut *l.tx).await?;
        }
        for sql in [
            "DELETE FROM room_members WHERE room = $1",
            "DELETE FROM room_bans WHERE room = $1",
            "DELETE FROM room_timeouts WHERE room = $1",
            "UPDATE rooms SET deleted = 1 WHERE name = $1",
        ] {
            sqlx::query(sql).bind(room).execute(&mut *l.tx).await?;
        }
        l.audit(actor, "deleted", None, None).await?;
        l.commit().await?;
        Ok(Ok(()))
    }

    /// Bans `target` (owners and admins who outrank them): removed, and refused from now on.
    pub async fn ban(&self, room: &str, actor: &str, target: &str) -> Outcome<Changed> {
        let _write = self.write_turn().await;
        let mut l = match self.lock_room(room, actor).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        if !l.outranks(actor, target).await? {
            return Ok(Err(Refusal::NotAllowed(
                "only the room's owner and admins ban, and only users below them",
            )));
        }
        if l.is_banned(target).await? {
            return Ok(Ok(false));
        }
        l.remove(target).await?;
        sqlx::query("INSERT INTO room_bans (room, user_id, banned_by, at) VALUES ($1, $2, $3, $4)")
            .bind(room)
            .bind(target)
            .bind(actor)
            .bind(l.now)
            .execute(&mut *l.tx)
            .await?;
        l.audit(actor, "banned", Some(target), None).await?;
        l.commit().await?;
        Ok(Ok(true))
    }

    /// Lifts a ban (owners and admins); the user is not added back.
    pub async fn unban(&self, room: &str, actor: &str, target: &str) -> Outcome<Changed> {
        let _write = self.write_turn().await;
        let mut l = match self.lock_room(room, actor).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        if let Err(r) = l.require(Role::Admin, "only the room's owner and admins lift bans") {
            return Ok(Err(r));
        }
        let done = sqlx::query("DELETE FROM room_bans WHERE room = $1 AND user_id = $2")
            .bind(room)
            .bind(target)
            .execute(&mut *l.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(Ok(false));
        }
        l.audit(actor, "unbanned", Some(target), None).await?;
        l.commit().await?;
        Ok(Ok(true))
    }

    /// Times `target` out until `until` (Unix ms; a time in the past lifts it), by owners and
    /// admins who outrank them.
    pub async fn set_timeout(
        &self,
        room: &str,
        actor: &str,
        target: &str,
        until: i64,
    ) -> Outcome<()> {
        let _write = self.write_turn().await;
        let mut l = match self.lock_room(room, actor).await? {
            Ok(l) => l,
            Err(r) => return Ok(Err(r)),
        };
        if !l.outranks(actor, target).await? {
            return Ok(Err(Refusal::NotAllowed(
                "only the room's owner and admins time users out, and only users below them",
            )));
        }
        sqlx::query("DELETE FROM room_timeouts WHERE room = $1 AND user_id = $2")
            .bind(room)
            .bind(target)
            .execute(&mut *l.tx)
            .await?;
        if until > l.now {
            sqlx::query(
                "INSERT INTO room_timeouts (room, user_id, until, set_by, at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(room)
            .bind(target)
            .bind(until)
            .bind(actor)
            .bind(l.now)
            .execute(&mut *l.tx)
            .await?;
            l.audit(actor, "timed_out", Some(target), Some(&until.to_string()))
                .await?;
        } else {
            l.audit(actor, "timeout_lifted", Some(target), None).await?;
        }
        l.commit().await?;
        Ok(Ok(()))
    }

    /// `user`'s role in `room`, if a member.
    pub async fn member_role(&self, room: &str, user: &str) -> Result<Option<Role>> {
        let row = sqlx::query("SELECT role FROM room_members WHERE room = $1 AND user_id = $2")
            .bind(room)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| Role::parse(&r.get::<String, _>(0))))
    }

    /// Members of `room` by username, up to `limit` of those after `after`.
    pub async fn members_page(
        &self,
        room: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, m.role FROM room_members m JOIN users u ON u.id = m.user_id \
             WHERE m.room = $1 AND u.username > $2 ORDER BY u.username LIMIT $3",
        )
        .bind(room)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Member {
                user: UserInfo {
                    id: r.get(0),
                    username: r.get(1),
                },
                role: Role::parse(&r.get::<String, _>(2)).unwrap_or(Role::Member),
            })
            .collect())
    }

    /// The room's restrictions as storage holds them now (expired timeouts left out).
    pub async fn restrictions(&self, room: &str) -> Result<Restrictions> {
        let row = sqlx::query("SELECT archived, deleted FROM rooms WHERE name = $1")
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(Restrictions::default());
        };
        let banned = sqlx::query("SELECT user_id FROM room_bans WHERE room = $1")
            .bind(room)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        let timeouts =
            sqlx::query("SELECT user_id, until FROM room_timeouts WHERE room = $1 AND until > $2")
                .bind(room)
                .bind(now_ms())
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        let blocked = match self.dm_pair(room).await? {
            Some((a, b)) => self.blocked_between(&a, &b).await?,
            None => false,
        };
        Ok(Restrictions {
            archived: row.get::<i64, _>(0) != 0,
            deleted: row.get::<i64, _>(1) != 0,
            banned,
            timeouts,
            blocked,
        })
    }

    /// The room's audit trail, newest first, up to `limit` entries before the id `before`.
    /// Room changes not yet announced, oldest first: those of `room` (any age), or of every
    /// room made before `before` (Unix ms), up to `limit`.
    pub async fn unannounced(
        &self,
        room: Option<&str>,
        before: i64,
        limit: u32,
    ) -> Result<Vec<Unannounced>> {
        let rows = sqlx::query(
            "SELECT a.id, a.room, a.actor, ua.username, a.action, a.target, ut.username, \
             a.detail FROM room_audit a \
             JOIN users ua ON ua.id = a.actor LEFT JOIN users ut ON ut.id = a.target \
             WHERE a.announce_pending IS NOT NULL AND (a.room = $1 OR ($1 = '' AND a.at < $2)) \
             ORDER BY a.id LIMIT $3",
        )
        .bind(room.unwrap_or(""))
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let target: Option<String> = r.get(5);
                let target_name: Option<String> = r.get(6);
                Unannounced {
                    id: r.get(0),
                    room: r.get(1),
                    actor: UserInfo {
                        id: r.get(2),
                        username: r.get(3),
                    },
                    action: r.get(4),
                    target: target.map(|id| UserInfo {
                        id,
                        username: target_name.unwrap_or_default(),
                    }),
                    detail: r.get(7),
                }
            })
            .collect())
    }

    /// The room change `id` is announced (its system message stored, or none due).
    pub async fn announced(&self, id: i64) -> Result<()> {
        let _write = self.write_turn().await;
        sqlx::query("UPDATE room_audit SET announce_pending = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn audit_page(
        &self,
        room: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, actor, action, target, detail, at FROM room_audit \
             WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(room)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                actor: r.get(1),
                action: r.get(2),
                target: r.get(3),
                detail: r.get(4),
                at: r.get(5),
            })
            .collect())
    }
}
