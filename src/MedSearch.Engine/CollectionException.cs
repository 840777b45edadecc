namespace MedSearch.Engine;

/// <summary>A collection cannot be opened or used as asked; the message says what and why.</summary>
public class CollectionException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The query or job was made with a different encoder than the collection's: embeddings would not be comparable.</summary>
public sealed class ModelMismatchException(string message) : CollectionException(message);

/// <summary>A caller asked for something that does not exist (a case id or key).</summary>
public sealed class CaseNotFoundException(string message) : CollectionException(message);

/// <summary>Another process (or another owner in this one) holds the data directory's lock.</summary>
public sealed class DataDirectoryInUseException(string message, Exception inner) : CollectionException(message, inner);

/// <summary>Part of a cluster did not answer, so the call could not be completed; retrying is safe.</summary>
public sealed class CaseSpaceUnavailableException(string message) : CollectionException(message);
