namespace MedSearch.Storage;

/// <summary>
/// The store's files cannot be used as they are: another format version, damaged checkpoint metadata, or an
/// I/O failure while opening. Thrown instead of opening empty, which would silently lose every case.
/// </summary>
public sealed class StoreException : Exception
{
    public StoreException(string message) : base(message) { }

    public StoreException(string message, Exception inner) : base(message, inner) { }
}
