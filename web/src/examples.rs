//! Built-in examples, written for this project (no test-set sentences): everyday sentences in
//! nine languages with their English translations.

pub struct Example {
    /// Language pair code, e.g. `de-en`.
    pub pair: &'static str,
    pub label: &'static str,
    pub src: &'static str,
    pub tgt: &'static str,
}

pub const EXAMPLES: &[Example] = &[
    Example {
        pair: "de-en",
        label: "German – English: a hedgehog in the garden",
        src: "Meine Schwester hat gestern im Garten einen kleinen Igel gefunden.",
        tgt: "My sister found a small hedgehog in the garden yesterday.",
    },
    Example {
        pair: "de-en",
        label: "German – English: the train and the storm",
        src: "Der Zug nach Hamburg fährt heute wegen des Sturms nicht.",
        tgt: "The train to Hamburg is not running today because of the storm.",
    },
    Example {
        pair: "fr-en",
        label: "French – English: soup after a walk",
        src: "Nous avons mangé une soupe chaude après la longue promenade.",
        tgt: "We ate a hot soup after the long walk.",
    },
    Example {
        pair: "fr-en",
        label: "French – English: museum hours",
        src: "Le musée ferme ses portes à dix-huit heures le dimanche.",
        tgt: "The museum closes its doors at six in the evening on Sundays.",
    },
    Example {
        pair: "ro-en",
        label: "Romanian – English: grandmother's pies",
        src: "Bunica mea face cele mai bune plăcinte cu mere din sat.",
        tgt: "My grandmother makes the best apple pies in the village.",
    },
    Example {
        pair: "zh-en",
        label: "Chinese – English: cycling to school",
        src: "我每天早上骑自行车去学校。",
        tgt: "I ride my bike to school every morning.",
    },
    Example {
        pair: "zh-en",
        label: "Chinese – English: an interesting book",
        src: "这本书比我想象的有趣多了。",
        tgt: "This book is much more interesting than I expected.",
    },
    Example {
        pair: "ja-en",
        label: "Japanese – English: an old friend",
        src: "昨日、駅の近くで古い友達に会いました。",
        tgt: "Yesterday I met an old friend near the station.",
    },
    Example {
        pair: "ja-en",
        label: "Japanese – English: ramen",
        src: "この店のラーメンはとても美味しいです。",
        tgt: "The ramen at this shop is very tasty.",
    },
    Example {
        pair: "ru-en",
        label: "Russian – English: a new car",
        src: "Мой брат купил новую машину в прошлом месяце.",
        tgt: "My brother bought a new car last month.",
    },
    Example {
        pair: "ar-en",
        label: "Arabic – English: in the library",
        src: "يقرأ الطالب كتابا في المكتبة.",
        tgt: "The student is reading a book in the library.",
    },
    Example {
        pair: "hi-en",
        label: "Hindi – English: morning tea",
        src: "मेरी माँ हर सुबह चाय बनाती है।",
        tgt: "My mother makes tea every morning.",
    },
    Example {
        pair: "ko-en",
        label: "Korean – English: weekend football",
        src: "저는 주말마다 공원에서 축구를 합니다.",
        tgt: "I play soccer in the park every weekend.",
    },
];

/// A small batch with one pair that is not a translation (line 4), to show the flag.
pub const BATCH_EXAMPLE: &str = "\
Die Kinder spielen im Hof Fußball. ||| The children are playing football in the yard.
Ich habe meinen Schlüssel im Büro vergessen. ||| I forgot my key at the office.
Morgen wird es regnen und kalt sein. ||| Tomorrow it will rain and be cold.
Der Bäcker öffnet um sechs Uhr. ||| My favourite colour has always been green.
Wir fahren im Sommer an die Ostsee. ||| In the summer we are going to the Baltic Sea.
Le chat dort sur le canapé. ||| The cat is sleeping on the sofa.
Elle apprend le piano depuis trois ans. ||| She has been learning the piano for three years.
我们明天下午开会。 ||| We have a meeting tomorrow afternoon.
";

/// Document mode: two short texts whose sentences do not line up one to one (the English
/// joins two German sentences and adds one of its own).
pub const DOCUMENT_EXAMPLE: (&str, &str) = (
    "Am Samstag sind wir früh aufgestanden. Wir wollten auf den Berg steigen. \
Der Weg war steil und steinig. Oben hatten wir einen herrlichen Blick über das Tal. \
Am Abend waren alle müde, aber glücklich.",
    "On Saturday we got up early because we wanted to climb the mountain. \
The path was steep and rocky. At the top we had a wonderful view over the valley. \
We took many photos. In the evening everyone was tired but happy.",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairs::parse_pairs;

    #[test]
    fn examples_cover_the_required_pairs() {
        for want in [
            "de-en", "fr-en", "ro-en", "zh-en", "ja-en", "ru-en", "ar-en", "hi-en", "ko-en",
        ] {
            assert!(EXAMPLES.iter().any(|e| e.pair == want), "no {want} example");
        }
        for e in EXAMPLES {
            assert!(
                !e.src.trim().is_empty() && !e.tgt.trim().is_empty(),
                "{}",
                e.label
            );
        }
    }

    #[test]
    fn batch_example_parses() {
        let p = parse_pairs(BATCH_EXAMPLE);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.pairs.len(), 8);
    }
}
