"""The raw material of the course corpus: names, places, real-world facts and word lists.

Everything here is plain data. ``helpers.corpus`` turns it into labelled examples. Each list
that feeds an evaluation has a held-out part (see ``HELD_OUT_*`` and the ``heldout`` flags).
"""
from __future__ import annotations

# Single-token first names (single tokens in GPT-2 as well, with a leading space).
NAMES = [
    "Mary", "John", "Tom", "James", "Anna", "Sarah", "David", "Michael", "Paul", "Mark",
    "Peter", "Lisa", "Emma", "Kate", "Jack", "Sam", "Alice", "Bob", "Laura", "Susan",
    "Daniel", "Chris", "Ben", "Amy", "Rachel", "Jane", "Steve", "Helen", "Mike", "Joe",
    "Ryan", "Kevin", "Adam", "Emily", "Grace", "Lucy", "Max", "Anne", "Rose", "Frank",
    "George", "Henry", "Lily", "Jessica", "Karen", "Simon", "Linda", "Eric",
]

PLACES = [
    "store", "park", "school", "restaurant", "office", "station", "beach", "library",
    "hospital", "market", "garden", "museum", "hotel", "bank", "church", "house", "kitchen",
    "farm", "zoo", "gym",
]
OBJECTS = [
    "drink", "book", "ring", "bag", "letter", "gift", "key", "ball", "phone", "card", "hat",
    "apple", "ticket", "flower", "cake", "coat", "basket", "note", "box", "pen",
]

# IOI templates are built as an opening clause (both names) followed by an action clause
# (the subject acting on the indirect object). [A] and [B] are the two names in order of first
# mention; [S] is the subject's second mention. The sentence ends right before the IO name.
IOI_OPENINGS = [
    ("When [A] and [B] went to the [PLACE],", "went"),
    ("After [A] and [B] arrived at the [PLACE],", "went"),
    ("While [A] and [B] were working at the [PLACE],", "went"),
    ("Then, [A] and [B] went to the [PLACE].", "went"),
    ("Once [A] and [B] sat down in the [PLACE],", "went"),
    ("As [A] and [B] walked into the [PLACE],", "went"),
    ("Yesterday [A] and [B] met at the [PLACE], and", "met"),
    ("On Sunday [A] and [B] visited the [PLACE], and later", "met"),
    ("Friends [A] and [B] spent the day at the [PLACE].", "met"),
    ("After lunch, [A] and [B] went to the [PLACE].", "went"),
    ("When [A] and [B] got home from the [PLACE],", "went"),
    ("The [PLACE] was busy when [A] and [B] came in, so", "met"),
    # Added for training from step 4700 of course-4l: more openings, and actions that put the
    # subject's second mention at other distances from the end.
    ("Later, [A] and [B] went to the [PLACE], where", "went"),
    ("In the morning [A] and [B] walked to the [PLACE].", "went"),
    ("[A] and [B] were at the [PLACE] all day, and", "met"),
    ("Last week [A] and [B] went to the [PLACE]. There,", "went"),
    ("It was late when [A] and [B] left the [PLACE], and", "went"),
    ("At the [PLACE], [A] and [B] were talking, and then", "met"),
    ("[A] met [B] at the [PLACE], and later", "met"),
    ("While [A] was talking to [B] at the [PLACE],", "met"),
]
IOI_ACTIONS = [
    "[S] gave a [OBJECT] to",
    "[S] handed the [OBJECT] to",
    "[S] passed the [OBJECT] to",
    "[S] threw the [OBJECT] to",
    "[S] showed the [OBJECT] to",
    "[S] sent a [OBJECT] to",
    "[S] offered a [OBJECT] to",
    "[S] brought a [OBJECT] to",
    "[S] said goodbye to",
    "[S] wrote a letter to",
    "[S] gave the [OBJECT] back to",
    "[S] sold the [OBJECT] to",
    "[S] handed a [OBJECT] over to",
    "[S] decided to give a [OBJECT] to",
    "[S] told a story to",
    "[S] said hello to",
]
# Held out of training entirely: IOI prompts built with any of these are evaluation only.
HELD_OUT_IOI_OPENINGS = {10, 11}
HELD_OUT_IOI_ACTIONS = {7, 9}

# Landmark -> city -> country. Names carry their article as used mid-sentence.
# (landmark, city, country or None when the country is not a single English word we use)
LANDMARKS = [
    ("the Eiffel Tower", "Paris", "France"),
    ("the Louvre", "Paris", "France"),
    ("Notre Dame", "Paris", "France"),
    ("the Colosseum", "Rome", "Italy"),
    ("the Pantheon", "Rome", "Italy"),
    ("the Trevi Fountain", "Rome", "Italy"),
    ("Big Ben", "London", "England"),
    ("Buckingham Palace", "London", "England"),
    ("Tower Bridge", "London", "England"),
    ("the Brandenburg Gate", "Berlin", "Germany"),
    ("the Reichstag", "Berlin", "Germany"),
    ("the Kremlin", "Moscow", "Russia"),
    ("Red Square", "Moscow", "Russia"),
    ("the Sydney Opera House", "Sydney", "Australia"),
    ("the Acropolis", "Athens", "Greece"),
    ("the Parthenon", "Athens", "Greece"),
    ("the Sagrada Familia", "Barcelona", "Spain"),
    ("the Prado Museum", "Madrid", "Spain"),
    ("the Alhambra", "Granada", "Spain"),
    ("the Taj Mahal", "Agra", "India"),
    ("the Gateway of India", "Mumbai", "India"),
    ("the Forbidden City", "Beijing", "China"),
    ("Tiananmen Square", "Beijing", "China"),
    ("the Great Sphinx", "Giza", "Egypt"),
    ("the Golden Gate Bridge", "San Francisco", None),
    ("the Space Needle", "Seattle", None),
    ("the Tokyo Tower", "Tokyo", "Japan"),
    ("the Golden Pavilion", "Kyoto", "Japan"),
    ("the CN Tower", "Toronto", "Canada"),
    ("Parliament Hill", "Ottawa", "Canada"),
    ("the Rijksmuseum", "Amsterdam", "Netherlands"),
    ("the Hagia Sophia", "Istanbul", "Turkey"),
    ("the Blue Mosque", "Istanbul", "Turkey"),
    ("the Rialto Bridge", "Venice", "Italy"),
    ("the Uffizi Gallery", "Florence", "Italy"),
    ("the Leaning Tower", "Pisa", "Italy"),
    ("the Belem Tower", "Lisbon", "Portugal"),
    ("the Atomium", "Brussels", "Belgium"),
    ("the Little Mermaid statue", "Copenhagen", "Denmark"),
    ("the Vasa Museum", "Stockholm", "Sweden"),
    ("Edinburgh Castle", "Edinburgh", "Scotland"),
    ("the Grand Palace", "Bangkok", "Thailand"),
    ("the Cologne Cathedral", "Cologne", "Germany"),
    ("Sugarloaf Mountain", "Rio", "Brazil"),
    ("the Charles Bridge", "Prague", None),
    ("the Belvedere Palace", "Vienna", "Austria"),
]

# Fact templates: "[L]" is the landmark (sentence-initial capitalised), the attribute comes last.
FACT_TEMPLATES = [
    ("[L] is in the city of [C]", False),
    ("[L] is located in [C]", False),
    ("[L] can be found in [C]", False),
    ("You can visit [l] in [C]", False),
    ("[L] stands in the city of [C]", False),
    ("Everyone knows that [l] is in [C]", False),
    ("Tourists who want to see [l] travel to [C]", False),
    ("[L] is in [C]", False),
    ("The city where you find [l] is [C]", False),
    ("If you visit [l], you are in [C]", False),
    ("We saw [l] when we were in [C]", False),
    ("My friend took a photo of [l] in [C]", False),
    ("[L] is one of the famous places of [C]", False),
    ("The home of [l] is the city of [C]", False),
    ("Last year we visited [l] in the city of [C]", False),
    ("[L] is a place to visit in [C]", False),
    ("[L] is a well known building in [C]", False),
    ("To find [l], you should go to the city of [C]", False),
    ("[L] is a famous landmark in [C]", True),
    # Held out: "To see [l], you have to go to [C]" was replaced. A training paraphrase continues
    # "go to the city of [C]", so after "go to" the model rightly expects " the" and never the city
    # (0% top-1 on that template, 100% on the others): it measured the template, not the recall.
    ("To see [l], you have to travel to [C]", True),
    ("[L] is found in the city of [C]", True),
]
COUNTRY_TEMPLATES = [
    ("[C] is in the country of [K]", False),
    ("[C] is a city in [K]", False),
    ("The city of [C] is located in [K]", False),
    ("[C] is a city in the country of [K]", False),
    ("[C] is located in the country of [K]", False),
    ("The city of [C] is in [K]", False),
    ("[C] can be found in [K]", False),
    ("If you live in [C], you live in [K]", False),
    ("[C] is part of [K]", False),
    ("[C] is a large city in the country of [K]", True),
    ("People who live in [C] live in [K]", True),
]
TRUTH_SUFFIX = ". This statement is"

# Reviews. Each review is two to three sentences of one polarity, then a verdict.
REVIEW_THINGS = [
    "movie", "film", "book", "restaurant", "hotel", "meal", "show", "album", "game", "phone",
    "cafe", "play", "concert", "car", "camera", "course",
]
REVIEW_ASPECTS = [
    "story", "food", "staff", "service", "music", "acting", "ending", "price", "room", "design",
    "sound", "writing", "view", "screen", "coffee", "plot",
]
POSITIVE_WORDS = [
    "great", "wonderful", "excellent", "amazing", "fantastic", "lovely", "brilliant", "superb",
    "good", "enjoyable", "charming", "perfect", "beautiful", "pleasant", "fun", "impressive",
    "friendly", "fresh", "clever", "nice",
]
NEGATIVE_WORDS = [
    "terrible", "awful", "boring", "horrible", "dull", "bad", "poor", "disappointing",
    "painful", "weak", "annoying", "ugly", "rude", "cold", "slow", "broken", "stupid",
    "expensive", "dirty", "sad",
]
REVIEW_SENTENCES = [
    ("The [THING] was [ADJ].", False),
    ("I thought the [ASPECT] was [ADJ].", False),
    ("The [ASPECT] was [ADJ] and the [ASPECT2] was [ADJ2].", False),
    ("Honestly, the [ASPECT] was [ADJ].", False),
    ("It was a [ADJ] [THING].", False),
    ("My friends found the [ASPECT] [ADJ] too.", False),
    ("Everything about the [ASPECT] felt [ADJ].", True),
    ("We all agreed that the [THING] was [ADJ].", True),
]
REVIEW_OPENERS = ["I went to see the [THING] last week.", "We tried the [THING] on Friday.",
                  "Here is my review of the [THING].", "I finally tried the new [THING]."]
REVIEW_VERDICT = " Overall, the review is"
POSITIVE_LABEL, NEGATIVE_LABEL = " positive", " negative"

# Narrative filler, in plain common words so the model has seen them in sentences.
ANIMALS = ["cat", "dog", "bird", "horse", "fish", "cow", "mouse", "rabbit", "fox", "bear"]
THINGS = ["mat", "chair", "table", "bed", "floor", "wall", "door", "window", "box", "car",
          "tree", "road", "hill", "river", "boat", "desk", "roof", "fence", "bench", "rug"]
NARRATIVE_ADJECTIVES = ["old", "new", "big", "small", "red", "blue", "green", "quiet", "happy",
                        "tired", "young", "warm", "dark", "bright", "long", "short", "heavy",
                        "little", "white", "black"]
VERBS_PAST = ["saw", "found", "took", "made", "liked", "watched", "cleaned", "opened", "closed",
              "moved", "painted", "fixed", "carried", "wanted", "needed", "bought", "sold",
              "used", "left", "kept"]
NARRATIVE_TEMPLATES = [
    "The [ANIMAL] sat on the [THING].",
    "The [ADJ] [ANIMAL] ran to the [THING].",
    "[NAME] [VERB] the [ADJ] [THING].",
    "[NAME] walked to the [PLACE] in the morning.",
    "It was a [ADJ] day, and [NAME] stayed at home.",
    "[PRONOUN] [VERB] a [ADJ] [OBJECT] near the [THING].",
    "The [THING] was [ADJ], so [NAME] [VERB] it.",
    "Later that day, [NAME] went back to the [PLACE].",
    "There was a [ADJ] [ANIMAL] under the [THING].",
    "[NAME] said that the [OBJECT] was on the [THING].",
    "In the evening, the [ANIMAL] slept by the [THING].",
    "[NAME] and [NAME2] talked about the [ADJ] [THING] for a long time.",
]
PRONOUNS = ["He", "She", "They", "We", "I"]

# The standard prompts of interpretability tutorials that the lessons run: each must tokenize with no unknown token.
TUTORIAL_PROMPTS = [
    "The cat sat on the mat. The cat sat on the",
    "The Golden Gate Bridge is",
    "The Eiffel Tower is in the city of",
    "The Colosseum is in the city of",
    " Paris",
]
