// Baton's dashboard: plain JavaScript modules (ES2022, no dependencies, no build
// step), embedded in the binary and served by Baton itself.
//
// Where things are:
//   state/store.js   the client's mirror of the coordinator; every change to it is made there
//   state/stream.js  the live stream that keeps the mirror current
//   api/client.js    calls to the coordinator's API; api/enums.js and api.d.ts are generated
//   router.js        a URL per view, back and forward, keys, re-rendering
//   views/*.js       one module per view (views/task/ for the task page's parts)
//   lib/, ui/        helpers: elements, formats, times, charts; errors, toasts
//
// All server text goes into the page as text nodes (see lib/dom.js); nothing is parsed as HTML.

import { onUnauthorized } from './api/client.js';
import { startClock } from './lib/time.js';
import { go, setOpeners, startRouter, stopRouter } from './router.js';
import { markLoggedOut, state } from './state/store.js';
import { startStream, stopStream } from './state/stream.js';
import { showLoggedOut } from './ui/logged-out.js';
import { openPalette, setActions } from './ui/palette.js';
import { openAgentForm } from './views/agent-form.js';
import { AgentsView } from './views/agents.js';
import { AttemptsView } from './views/attempts.js';
import { BoardView } from './views/board.js';
import { openComposer } from './views/composer.js';
import { InboxView, watchInbox } from './views/inbox.js';
import { PlansView } from './views/plans.js';
import { ProjectsView, openAddProject } from './views/projects.js';
import { CostsView } from './views/costs.js';
import { DagView } from './views/dag.js';
import { DocsView } from './views/docs.js';
import { FleetView } from './views/fleet.js';
import { NotFoundView } from './views/not-found.js';
import { OverviewView } from './views/overview.js';
import { TaskView } from './views/task/view.js';
import { WebhooksView } from './views/webhooks.js';

/** The views by the name the router gives them (see `parseHash`). */
const VIEWS = {
  overview: OverviewView,
  board: BoardView,
  dag: DagView,
  task: TaskView,
  agents: AgentsView,
  docs: DocsView,
  costs: CostsView,
  webhooks: WebhooksView,
  fleet: FleetView,
  inbox: InboxView,
  projects: ProjectsView,
  plans: PlansView,
  attempts: AttemptsView,
  notfound: NotFoundView,
};

setOpeners({ composer: () => openComposer(), palette: openPalette });
setActions([
  { label: 'New task', hint: 'action · n', run: () => openComposer() },
  { label: 'New plan', hint: 'action · the plan editor', run: () => go('#/plans') },
  { label: 'New agent', hint: 'action', run: () => openAgentForm(null) },
  { label: 'Add project', hint: 'action', run: openAddProject },
]);
document.getElementById('new-task').addEventListener('click', () => openComposer());
document.getElementById('open-palette').addEventListener('click', openPalette);

onUnauthorized(() => {
  if (state.loggedOut) return;
  markLoggedOut();
  stopStream();
  stopRouter();
  showLoggedOut();
});

startClock();
startStream(); // the stream first, so nothing falls between it and the snapshots
startRouter(VIEWS);
watchInbox();
