namespace MedSearch.Storage;

/// <summary>
/// Names one completed store checkpoint. <see cref="Position"/> is the log tail when the checkpoint began:
/// every record written below that log address is in the checkpoint, so derived data tagged with it is
/// known to reflect at least those writes.
/// </summary>
/// <param name="Token">FASTER's checkpoint token; stable across reopen.</param>
/// <param name="Position">Log address covered by the checkpoint.</param>
/// <param name="Sequence">
/// Counts the store's checkpoints (1 for the first): FASTER's tokens are GUIDs and say nothing of order, and derived
/// data must know whether the checkpoint a store recovered to came after the one it was tagged with. Stores
/// checkpointed before the count existed start it at 0.
/// </param>
public readonly record struct CheckpointToken(Guid Token, long Position, long Sequence);
