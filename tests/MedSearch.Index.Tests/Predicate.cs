namespace MedSearch.Index.Tests;

/// <summary>A filter given as a predicate (not a key list), counting how often the index asks it.</summary>
internal sealed class Predicate(Func<ulong, bool> accepts) : IKeyFilter
{
    public int Calls;

    public bool Accepts(ulong key)
    {
        Interlocked.Increment(ref Calls);
        return accepts(key);
    }
}
