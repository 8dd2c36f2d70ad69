// The dashboard's own addresses (hash routes) of tasks and documents.

export const enc = encodeURIComponent;
/** @param {string} name a document's name, its slashes kept */
export const docPath = (name) => String(name).split('/').map(enc).join('/');
/** @param {string} name */
export const docHref = (name) => '#/docs/' + docPath(name);
/** @param {string} id */
export const taskHref = (id) => '#/tasks/' + enc(id);
