// Every soup, by name: the data-plane half of the soup entries in CloudSoup.Control/Methods/SoupMethods.cs.
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Soups;

public static class Soups
{
    private static readonly Dictionary<string, ISoup> ByName =
        new ISoup[] { new UniformSoup(), new GreedySoup(), new PrunedSoup(), new LearnedSoup() }.ToDictionary(s => s.Signature.Name, StringComparer.OrdinalIgnoreCase);

    public static IReadOnlyCollection<ISoup> All => ByName.Values;

    public static bool TryGet(MethodSignature signature, out ISoup soup) => ByName.TryGetValue(signature.Name, out soup!);
}
