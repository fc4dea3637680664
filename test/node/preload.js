'use strict';
// Preloaded with `node -r ./preload.js` (see run.sh) before kurento-client is loaded.
//
// kurento-client 7.3.0 (lib/TransactionsManager.js) subclasses require('domain').Domain
// and calls it without `new`, which Node >= 20 refuses ("Class constructor Domain cannot
// be invoked without 'new'") before anything is sent. The client has its own fallback for
// runtimes without domains and takes it when `require('domain').Domain` is undefined.
// This is a client bug; no server can fix it (see /work/shared/TESTING.md).
const domain = require('domain');
delete domain.Domain;
if (domain.Domain !== undefined) domain.Domain = undefined;
