// What this session sees of the lobby: its parties (members with the leader marked, pending join
// requests, settings and strategies, the version, the code for the leader, the invitations the
// members sent), this user's pending invitations, its followed users' statuses, and the last
// search. Replies and events update the state; each change redraws the part it touched.

import type { Inbound, InviteStrategyName, JoinStrategyName, Party, PartyInvitation, PartySearchArgs, Presence, RequestArgs, RequestName, RequestReply, StatusPresence } from '../src/index.js';
import { button, h } from './dom.js';
import { errorText, shortId, spaced, timeOfDay, who } from './format.js';

/** What the lobby needs from the connection: logged requests and the session's own presence. */
export interface Session {
  request<K extends RequestName>(name: K, args: RequestArgs<K>): Promise<RequestReply<K>>;
  me(): Presence | null;
}

interface PartyView {
  partyId: string;
  /** Asked to join a closed party; the leader has not answered yet. */
  pending: boolean;
  open: boolean;
  hidden: boolean;
  maxSize: number;
  label: string;
  leader: Presence | null;
  members: Presence[];
  /** Join requests (seen by the leader). */
  requests: Presence[];
  /** SPEC L-9: +1 per change; 0n while a join request is pending. */
  version: bigint;
  joinStrategy: JoinStrategyName;
  inviteStrategy: InviteStrategyName;
  /** The party code, read by the leader (null: not read, or not the leader). */
  code: string | null;
  /** Pending invitations the members sent, by invitee user id (from `partyInvitationSent`). */
  invited: Map<string, { inviter: Presence; expiresAt: bigint }>;
}

export interface LobbyElements {
  parties: HTMLElement;
  notices: HTMLElement;
  invitations: HTMLElement;
  results: HTMLElement;
  following: HTMLElement;
}

/** What a `partyRemoved` reason means to the removed session. */
const REMOVED: Record<string, string> = {
  Kicked: 'you were kicked by the leader',
  Closed: 'the leader closed it',
  Rejected: 'the leader rejected your join request',
  Moved: 'you accepted an invitation to another party (one party per user)',
};

/** What a `partyInvitationEnded` reason means to the invitee. */
const ENDED: Record<string, string> = {
  Accepted: 'accepted from another session',
  Rejected: 'rejected from another session',
  Cancelled: 'cancelled by the inviter or the leader',
  Expired: 'it expired',
  PartyGone: 'the party ended',
};

const sameSession = (a: Presence, b: Presence) => a.sessionId === b.sessionId;

export class Lobby {
  readonly #session: Session;
  readonly #el: LobbyElements;
  readonly #parties = new Map<string, PartyView>();
  readonly #following = new Map<string, StatusPresence>();
  /** This user's pending invitations, by party id, first sent first. */
  readonly #invitations = new Map<string, PartyInvitation>();
  /** Parties whose code is being read (one request each at a time). */
  readonly #codesAsked = new Set<string>();
  /** The party the party forms act on by default. */
  #current: string | null = null;
  /** Called when the set of parties changes (the forms' party pickers follow it). */
  onPartiesChanged: () => void = () => {};

  constructor(session: Session, elements: LobbyElements) {
    this.#session = session;
    this.#el = elements;
    this.#renderInvitations();
  }

  get partyIds(): string[] {
    return [...this.#parties.keys()];
  }

  get current(): string | null {
    return this.#current;
  }

  /** A party from a reply (create, join, get, accept, code join) or a `partyJoined` / `partySnapshot` event. */
  upsert(party: Party): void {
    const known = this.#parties.get(party.partyId);
    if (known !== undefined && !known.pending && party.version < known.version) return; // an older snapshot
    this.#parties.set(party.partyId, {
      partyId: party.partyId,
      pending: false,
      open: party.open,
      hidden: party.hidden,
      maxSize: party.maxSize,
      label: party.label,
      leader: party.leader,
      members: party.members,
      requests: known?.requests ?? [],
      version: party.version,
      joinStrategy: party.joinStrategy,
      inviteStrategy: party.inviteStrategy,
      code: known?.code ?? null,
      invited: known?.invited ?? new Map(),
    });
    this.#current ??= party.partyId;
    if (known === undefined || known.pending) this.#current = party.partyId;
    if (this.#invitations.delete(party.partyId)) this.#renderInvitations();
    this.#partiesChanged();
  }

  /** This user's pending invitations, as the server lists them (replaces what the events built). */
  showInvitations(invitations: PartyInvitation[]): void {
    this.#invitations.clear();
    for (const invitation of invitations) this.#invitations.set(invitation.party.partyId, invitation);
    this.#renderInvitations();
  }

  /** Joins by id: an open party at once, a closed one once its leader accepts. */
  async join(partyId: string): Promise<RequestReply<'partyJoin'>> {
    const reply = await this.#session.request('partyJoin', { partyId });
    if (reply.type === 'partyInfo') this.upsert(reply);
    else this.#pending(reply.partyId);
    return reply;
  }

  /** After leaving or closing. */
  forget(partyId: string, why: string): void {
    if (this.#parties.delete(partyId)) this.notice(`Left party ${shortId(partyId)}: ${why}.`, 'info');
    this.#partiesChanged();
  }

  /** Search results with a Join button each. */
  showSearch(args: PartySearchArgs, result: RequestReply<'partySearch'>): void {
    const caption = `${result.parties.length} ${result.parties.length === 1 ? 'party' : 'parties'} for ${args.query ? `“${args.query}”` : 'every party'}${result.cursor === null ? '' : ' (more pages: search with the cursor)'}`;
    if (result.parties.length === 0) {
      this.#el.results.replaceChildren(h('p', { class: 'empty', text: caption }));
      return;
    }
    const rows = result.parties.map((p) =>
      h(
        'tr',
        { data: { partyId: p.partyId } },
        h('td', { class: 'mono', text: shortId(p.partyId), title: p.partyId }),
        h('td', { text: p.open ? 'open' : 'closed' }),
        h('td', { text: `${p.memberCount}/${p.maxSize}` }),
        h('td', { class: 'label', text: p.label || '—' }),
        h('td', {}, button('Join', () => this.#act(this.#el.results, () => this.join(p.partyId)), 'small', { action: 'join' })),
      ),
    );
    this.#el.results.replaceChildren(
      h('p', { class: 'muted', text: caption }),
      h('table', { class: 'results' }, h('thead', {}, h('tr', {}, ...['party', '', 'members', 'label', ''].map((t) => h('th', { text: t })))), h('tbody', {}, ...rows)),
    );
  }

  /** The reply to a follow: the followed users' sessions and statuses now. */
  followed(presences: StatusPresence[]): void {
    for (const p of presences) this.#following.set(key(p.presence), p);
    this.#renderFollowing();
  }

  unfollowed(userIds: string[]): void {
    for (const [k, p] of this.#following) if (userIds.includes(p.presence.userId)) this.#following.delete(k);
    this.#renderFollowing();
  }

  /** A new session (a reconnect): the server dropped its parties and follows (SPEC C-6); it sends
   *  the user's pending invitations again after the welcome. */
  reset(): void {
    if (this.#parties.size > 0 || this.#following.size > 0) {
      this.notice('New session: the server removed the old one from its parties and dropped its follows.', 'info');
    }
    this.#parties.clear();
    this.#following.clear();
    this.#invitations.clear();
    this.#current = null;
    this.#partiesChanged();
    this.#renderFollowing();
    this.#renderInvitations();
  }

  /** Server events that change what the lobby shows. */
  apply(message: Inbound): void {
    switch (message.type) {
      case 'partyPresence':
        return this.#versioned(message.partyId, message.version, (p) => {
          p.members = [...p.members.filter((m) => !message.leaves.some((l) => sameSession(l, m))), ...message.joins.filter((j) => !p.members.some((m) => sameSession(m, j)))];
          p.requests = p.requests.filter((r) => !message.joins.some((j) => sameSession(j, r)) && !message.leaves.some((l) => sameSession(l, r)));
          // Any way in consumes an invitation (accept, plain join, code join, accepted request).
          for (const j of message.joins) p.invited.delete(j.userId);
        });
      case 'partyLeader':
        return this.#versioned(message.partyId, message.version, (p) => (p.leader = message.leader));
      case 'partyUpdated':
        return this.#versioned(message.partyId, message.version, (p) =>
          Object.assign(p, {
            open: message.open,
            hidden: message.hidden,
            maxSize: message.maxSize,
            label: message.label,
            joinStrategy: message.joinStrategy,
            inviteStrategy: message.inviteStrategy,
          }),
        );
      case 'partyJoinRequest':
        return this.#update(message.partyId, (p) => (p.requests = [...p.requests, ...message.presences.filter((n) => !p.requests.some((r) => sameSession(r, n)))]));
      case 'partyJoined':
        return this.upsert(message.party);
      case 'partySnapshot':
        return this.upsert(message.party);
      case 'partyInvited':
        this.#invitations.set(message.invitation.party.partyId, message.invitation);
        return this.#renderInvitations();
      case 'partyInvitationSent':
        return this.#update(message.partyId, (p) => p.invited.set(message.invitee, { inviter: message.inviter, expiresAt: message.expiresAt }));
      case 'partyInvitationRejected':
        return this.#update(message.partyId, (p) => p.invited.delete(message.invitee));
      case 'partyInvitationEnded': {
        const mine = message.invitee === this.#session.me()?.userId;
        if (mine && this.#invitations.delete(message.partyId)) {
          this.notice(`Invitation to party ${shortId(message.partyId)} ended: ${ENDED[message.reason] ?? message.reason}.`, 'info', { ended: message.reason });
          this.#renderInvitations();
        }
        return this.#update(message.partyId, (p) => p.invited.delete(message.invitee));
      }
      case 'partyRemoved':
        this.#parties.delete(message.partyId);
        this.notice(`Removed from party ${shortId(message.partyId)}: ${REMOVED[message.reason] ?? message.reason}.`, 'bad', { removed: message.reason });
        return this.#partiesChanged();
      case 'statusPresenceEvent':
        for (const p of message.leaves) this.#following.delete(key(p.presence));
        for (const p of message.joins) this.#following.set(key(p.presence), p);
        return this.#renderFollowing();
      default:
        return;
    }
  }

  /** A line above the parties until dismissed. */
  notice(text: string, tone: 'info' | 'bad', data: Record<string, string> = {}): void {
    const item = h('div', { class: tone === 'info' ? 'notice info' : 'notice', data }, h('span', { text }));
    item.append(button('×', () => item.remove(), 'secondary small'));
    this.#el.notices.append(item);
    while (this.#el.notices.childElementCount > 5) this.#el.notices.firstElementChild?.remove();
  }

  select(partyId: string): void {
    this.#current = partyId;
    this.#partiesChanged();
  }

  #pending(partyId: string): void {
    if (this.#parties.has(partyId)) return;
    this.#parties.set(partyId, {
      partyId,
      pending: true,
      open: false,
      hidden: false,
      maxSize: 0,
      label: '',
      leader: null,
      members: [],
      requests: [],
      version: 0n,
      joinStrategy: 'Public',
      inviteStrategy: 'AllMembers',
      code: null,
      invited: new Map(),
    });
    this.#partiesChanged();
  }

  #update(partyId: string, change: (party: PartyView) => void): void {
    const party = this.#parties.get(partyId);
    if (party === undefined) return;
    change(party);
    this.#renderParties();
  }

  /**
   * A state event carrying the party's version (SPEC L-9). A version more than one step ahead means
   * this page missed a change: it asks for the snapshot (`partyGet`), as the README advises.
   */
  #versioned(partyId: string, version: bigint, change: (party: PartyView) => void): void {
    const party = this.#parties.get(partyId);
    if (party === undefined || party.pending) return;
    const gap = version > party.version + 1n;
    change(party);
    if (version > party.version) party.version = version;
    this.#renderParties();
    if (gap) {
      this.notice(`Party ${shortId(partyId)} jumped to version ${version}: asking for its snapshot.`, 'info');
      void this.#session.request('partyGet', { partyId }).then((snapshot) => this.upsert(snapshot), () => {});
    }
  }

  /** Reads the code of every party this session leads and has no code for (once at a time). */
  #readCodes(): void {
    const me = this.#session.me();
    for (const p of this.#parties.values()) {
      const leading = me !== null && p.leader !== null && sameSession(p.leader, me);
      if (!leading) p.code = null;
      if (!leading || p.pending || p.code !== null || this.#codesAsked.has(p.partyId)) continue;
      this.#codesAsked.add(p.partyId);
      void this.#session
        .request('partyCodeGet', { partyId: p.partyId })
        .then(
          (reply) => this.#update(reply.partyId, (view) => (view.code = reply.code)),
          () => {},
        )
        .finally(() => this.#codesAsked.delete(p.partyId));
    }
  }

  #partiesChanged(): void {
    if (this.#current !== null && !this.#parties.has(this.#current)) this.#current = this.#parties.keys().next().value ?? null;
    this.#renderParties();
    this.onPartiesChanged();
  }

  /** Runs a card's button action; a failure is shown in `where`'s error line. */
  async #act(where: HTMLElement, action: () => Promise<unknown>): Promise<void> {
    const output = where.querySelector<HTMLOutputElement>(':scope > output.result') ?? where.appendChild(h('output', { class: 'result error' }));
    output.textContent = '';
    try {
      await action();
    } catch (error) {
      output.className = 'result error';
      output.textContent = errorText(error);
    }
  }

  #renderParties(): void {
    this.#readCodes();
    if (this.#parties.size === 0) {
      this.#el.parties.replaceChildren(h('p', { class: 'empty', text: 'Not in a party. Create one or join one.' }));
      return;
    }
    this.#el.parties.replaceChildren(...[...this.#parties.values()].map((p) => this.#card(p)));
  }

  #card(p: PartyView): HTMLElement {
    const me = this.#session.me();
    const leading = me !== null && p.leader !== null && sameSession(p.leader, me);
    const card = h('article', { class: p.partyId === this.#current ? 'party current' : 'party', data: { partyId: p.partyId, version: String(p.version) } });
    const act = (action: () => Promise<unknown>) => () => this.#act(card, action);
    const request = this.#session.request.bind(this.#session);

    card.append(
      h(
        'div',
        { class: 'party-head' },
        h('h3', { text: p.label ? `Party ${labelTitle(p.label)}` : 'Party' }),
        h('span', { class: 'party-id', text: p.partyId, attrs: { 'aria-label': 'party id' } }),
      ),
      h(
        'div',
        { class: 'tags' },
        p.pending ? h('span', { class: 'badge pending', text: 'join requested: waiting for the leader' }) : null,
        p.pending ? null : h('span', { class: p.open ? 'tag on' : 'tag', text: p.open ? 'open' : 'closed' }),
        p.hidden ? h('span', { class: 'tag', text: 'hidden' }) : null,
        p.pending ? null : h('span', { class: 'tag', text: `${p.members.length}/${p.maxSize} members` }),
        p.pending ? null : h('span', { class: 'tag version', text: `v${p.version}`, title: 'version (SPEC L-9): +1 per change of what a member sees' }),
        p.partyId === this.#current ? h('span', { class: 'tag on', text: 'selected in the forms' }) : null,
      ),
    );
    if (!p.pending) {
      card.append(
        h(
          'dl',
          { class: 'facts' },
          h('dt', { text: 'label' }),
          h('dd', { class: 'mono', text: p.label || '—' }),
          h('dt', { text: 'code' }),
          leading
            ? h(
                'dd',
                { class: 'code' },
                h('span', { class: 'party-code', text: p.code ?? '…', data: { code: p.code ?? '' }, attrs: { 'aria-label': 'party code' } }),
                button('Regenerate', act(async () => {
                  const reply = await request('partyCodeRegenerate', { partyId: p.partyId });
                  this.#update(p.partyId, (view) => (view.code = reply.code));
                }), 'secondary small', { action: 'regenerate-code' }),
              )
            : h('dd', { class: 'muted', text: 'only the leader can read it' }),
          h('dt', { text: 'who joins' }),
          h('dd', { class: 'strategy', data: { strategy: 'join' }, text: spaced(p.joinStrategy) }),
          h('dt', { text: 'who invites' }),
          h('dd', { class: 'strategy', data: { strategy: 'invite' }, text: spaced(p.inviteStrategy) }),
        ),
        h(
          'ul',
          { class: 'plain members', attrs: { 'aria-label': 'members' } },
          ...p.members.map((m) => {
            const isLeader = p.leader !== null && sameSession(m, p.leader);
            const isMe = me !== null && sameSession(m, me);
            return h(
              'li',
              { data: { userId: m.userId, sessionId: String(m.sessionId) } },
              h('span', { class: 'who' }, who(m), ' ', h('small', { text: `#${m.sessionId}` })),
              isLeader ? h('span', { class: 'badge leader', text: '★ leader' }) : null,
              isMe ? h('span', { class: 'badge you', text: 'you' }) : null,
              leading && !isMe ? button('Promote', act(() => request('partyPromote', { partyId: p.partyId, presence: m })), 'secondary small', { action: 'promote' }) : null,
              leading && !isMe ? button('Kick', act(() => request('partyRemove', { partyId: p.partyId, presence: m })), 'danger small', { action: 'kick' }) : null,
            );
          }),
        ),
      );
    }
    if (p.invited.size > 0) {
      card.append(
        h('h3', { text: 'Invited' }),
        h(
          'ul',
          { class: 'plain invited' },
          ...[...p.invited].map(([invitee, sent]) =>
            h(
              'li',
              { data: { userId: invitee } },
              h('span', { class: 'who', text: invitee }),
              h('small', { class: 'muted', text: `by ${who(sent.inviter)}, until ${timeOfDay(sent.expiresAt)}` }),
              leading || (me !== null && sent.inviter.userId === me.userId)
                ? button('Cancel', act(() => request('partyInvitationCancel', { partyId: p.partyId, userId: invitee })), 'danger small', { action: 'cancel-invitation' })
                : null,
            ),
          ),
        ),
      );
    }
    if (p.requests.length > 0) {
      card.append(
        h('h3', { text: 'Join requests' }),
        h(
          'ul',
          { class: 'plain requests' },
          ...p.requests.map((r) =>
            h(
              'li',
              { data: { userId: r.userId } },
              h('span', { class: 'who', text: who(r) }),
              button('Accept', act(() => request('partyAccept', { partyId: p.partyId, presence: r })), 'small', { action: 'accept' }),
              button('Reject', act(() => request('partyRemove', { partyId: p.partyId, presence: r })), 'danger small', { action: 'reject' }),
            ),
          ),
        ),
      );
    }
    card.append(
      h(
        'div',
        { class: 'buttons' },
        p.partyId === this.#current ? null : button('Select', () => this.select(p.partyId), 'secondary small', { action: 'select' }),
        p.pending ? null : button('Refresh', act(async () => this.upsert(await request('partyGet', { partyId: p.partyId }))), 'secondary small', { action: 'refresh' }),
        leading && !p.open
          ? button('Join requests', act(async () => {
              const list = await request('partyJoinRequestListGet', { partyId: p.partyId });
              this.#update(p.partyId, (view) => (view.requests = list.presences));
            }), 'secondary small', { action: 'requests' })
          : null,
        button('Leave', act(async () => {
          await request('partyLeave', { partyId: p.partyId });
          this.forget(p.partyId, 'you left');
        }), 'secondary small', { action: 'leave' }),
        leading
          ? button('Close', act(async () => {
              await request('partyClose', { partyId: p.partyId });
              this.forget(p.partyId, 'you closed it');
            }), 'danger small', { action: 'close' })
          : null,
      ),
    );
    return card;
  }

  #renderInvitations(): void {
    const refresh = button('Refresh', () => this.#act(this.#el.invitations, async () => this.showInvitations((await this.#session.request('partyInvitationList', undefined)).invitations)), 'secondary small', { action: 'list-invitations' });
    const items = [...this.#invitations.values()].map((invitation) => {
      const { party, inviter } = invitation;
      const partyId = party.partyId;
      return h(
        'li',
        { data: { partyId, inviter: inviter.userId } },
        h(
          'div',
          { class: 'invitation' },
          h('span', { class: 'who' }, h('strong', { text: party.label ? labelTitle(party.label) : 'Party' }), ' ', h('small', { class: 'mono', text: shortId(partyId), title: partyId })),
          h('small', { class: 'muted', text: `from ${who(inviter)} · ${party.memberCount}/${party.maxSize} · until ${timeOfDay(invitation.expiresAt)}` }),
        ),
        button('Accept', () => this.#act(this.#el.invitations, async () => this.upsert(await this.#session.request('partyInvitationAccept', { partyId }))), 'small', { action: 'accept-invitation' }),
        button('Reject', () => this.#act(this.#el.invitations, async () => {
          await this.#session.request('partyInvitationReject', { partyId });
          if (this.#invitations.delete(partyId)) this.#renderInvitations();
        }), 'danger small', { action: 'reject-invitation' }),
      );
    });
    this.#el.invitations.replaceChildren(
      h('ul', { class: 'plain invitations' }, ...(items.length > 0 ? items : [h('li', { class: 'empty', text: 'No pending invitations.' })])),
      h('div', { class: 'buttons' }, refresh),
    );
  }

  #renderFollowing(): void {
    const me = this.#session.me();
    const items = [...this.#following.values()].map((p) =>
      h(
        'li',
        { data: { userId: p.presence.userId } },
        h('span', { class: 'who' }, who(p.presence), ' ', h('small', { text: `#${p.presence.sessionId}` })),
        me !== null && sameSession(me, p.presence) ? h('span', { class: 'badge you', text: 'you' }) : null,
        h('span', { class: 'status', text: p.status === '' ? 'online' : `“${p.status}”` }),
      ),
    );
    this.#el.following.replaceChildren(...(items.length > 0 ? items : [h('li', { class: 'empty', text: 'Nobody followed.' })]));
  }
}

function key(p: Presence): string {
  return `${p.userId}\u0000${p.sessionId}`;
}

/** A short title from a JSON label: its values, e.g. `ctf · eu`. */
function labelTitle(label: string): string {
  try {
    const parsed: unknown = JSON.parse(label);
    if (parsed !== null && typeof parsed === 'object') {
      const values = Object.values(parsed as Record<string, unknown>).filter((v) => typeof v !== 'object');
      if (values.length > 0) return values.slice(0, 3).map(String).join(' · ');
    }
  } catch {
    // not JSON: the label itself
  }
  return label.length > 24 ? label.slice(0, 24) + '…' : label;
}
