namespace MedSearch.Index;

/// <summary>
/// How the HNSW graph stores its copy of each vector. The index also keeps every vector as f32 (see
/// <see cref="HnswIndex"/>), so quantisation changes search speed and memory, never the similarities returned.
/// </summary>
public enum Quantization
{
    /// <summary>4 bytes per component; graph distances are exact.</summary>
    F32,

    /// <summary>2 bytes per component; graph candidates are re-ranked with the f32 vectors.</summary>
    F16,

    /// <summary>
    /// 1 byte per component (unit vector scaled to ±127); graph distances are approximate, so the search keeps a
    /// wider candidate list and re-ranks it with the f32 vectors.
    /// </summary>
    I8,
}
