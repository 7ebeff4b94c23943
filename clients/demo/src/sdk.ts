// The SDK, bundled from its sources (clients/typescript/src): the demo always runs the SDK of
// the same commit.
export * from "../../typescript/src/index.ts";
